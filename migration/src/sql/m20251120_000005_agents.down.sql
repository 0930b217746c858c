DROP TABLE agent_tools;
DROP TABLE agents;
DROP TYPE agent_status;
DROP TYPE agent_type;
