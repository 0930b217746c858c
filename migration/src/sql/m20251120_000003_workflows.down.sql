ALTER TABLE workflows DROP CONSTRAINT fk_current_version;
DROP TABLE workflow_versions;
DROP FUNCTION ipa_forbid_version_update();
DROP TABLE workflows;
DROP TYPE workflow_status;
