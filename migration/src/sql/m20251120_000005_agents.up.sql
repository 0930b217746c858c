-- Agents and their tools: the seed's tables, verbatim.
CREATE TYPE agent_type AS ENUM ('semantic_kernel', 'autogen', 'custom');
CREATE TYPE agent_status AS ENUM ('active', 'inactive', 'deprecated');

CREATE TABLE agents (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) NOT NULL,
    description TEXT,
    type agent_type NOT NULL,
    status agent_status DEFAULT 'active',
    configuration JSONB NOT NULL,  -- Agent-specific configuration
    system_prompt TEXT,
    model_name VARCHAR(100),  -- e.g., 'gpt-4', 'gpt-35-turbo'
    temperature DECIMAL(3, 2) DEFAULT 0.7,
    max_tokens INTEGER DEFAULT 1000,
    created_by UUID NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    CONSTRAINT name_not_empty CHECK (length(trim(name)) > 0),
    CONSTRAINT temperature_range CHECK (temperature >= 0 AND temperature <= 2),
    CONSTRAINT max_tokens_positive CHECK (max_tokens > 0)
);

CREATE INDEX idx_agents_status ON agents(status);
CREATE INDEX idx_agents_type ON agents(type);
CREATE INDEX idx_agents_created_by ON agents(created_by);

CREATE TABLE agent_tools (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id UUID NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    tool_name VARCHAR(255) NOT NULL,
    tool_type VARCHAR(100) NOT NULL,  -- 'function', 'api', 'plugin'
    configuration JSONB NOT NULL,
    is_enabled BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    UNIQUE(agent_id, tool_name)
);

CREATE INDEX idx_agent_tools_agent_id ON agent_tools(agent_id);
CREATE INDEX idx_agent_tools_is_enabled ON agent_tools(is_enabled);

CREATE TRIGGER update_agents_updated_at
    BEFORE UPDATE ON agents
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at_column();

-- Not in the seed's trigger list, though agent_tools has an updated_at column like the others.
CREATE TRIGGER update_agent_tools_updated_at
    BEFORE UPDATE ON agent_tools
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at_column();
