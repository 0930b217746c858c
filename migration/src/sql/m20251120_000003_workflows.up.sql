-- Workflows and their versions: the seed's tables, with the current version bound to its own
-- workflow.
CREATE TYPE workflow_status AS ENUM ('draft', 'active', 'archived');

CREATE TABLE workflows (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) NOT NULL,
    description TEXT,
    created_by UUID NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    status workflow_status DEFAULT 'draft',
    current_version_id UUID,
    tags TEXT[],
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    CONSTRAINT name_not_empty CHECK (length(trim(name)) > 0)
);

CREATE INDEX idx_workflows_created_by ON workflows(created_by);
CREATE INDEX idx_workflows_status ON workflows(status);
CREATE INDEX idx_workflows_tags ON workflows USING GIN(tags);
CREATE INDEX idx_workflows_metadata ON workflows USING GIN(metadata);

CREATE TABLE workflow_versions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_id UUID NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    version_number INTEGER NOT NULL,
    definition JSONB NOT NULL,
    change_summary TEXT,
    created_by UUID NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    UNIQUE(workflow_id, version_number),
    CONSTRAINT version_number_positive CHECK (version_number > 0),
    -- The target of the composite foreign keys that pair a version with its own workflow.
    CONSTRAINT workflow_versions_workflow_id_id_key UNIQUE (workflow_id, id)
);

-- The seed's fk_current_version referenced workflow_versions(id) alone, so a workflow could point
-- at another workflow's version. Referencing (workflow_id, id) forbids that; deleting the version
-- still clears only current_version_id, as the seed's ON DELETE SET NULL meant.
ALTER TABLE workflows
    ADD CONSTRAINT fk_current_version
    FOREIGN KEY (id, current_version_id)
    REFERENCES workflow_versions (workflow_id, id)
    ON DELETE SET NULL (current_version_id);

CREATE INDEX idx_workflow_versions_workflow_id ON workflow_versions(workflow_id);
CREATE INDEX idx_workflow_versions_created_at ON workflow_versions(created_at DESC);

CREATE TRIGGER update_workflows_updated_at
    BEFORE UPDATE ON workflows
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at_column();

-- A published version is history: executions and audit rows refer to it as it was.
CREATE FUNCTION ipa_forbid_version_update() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'workflow versions are immutable; publish a new version instead'
        USING ERRCODE = 'object_not_in_prerequisite_state';
END
$$;

CREATE TRIGGER workflow_versions_immutable
    BEFORE UPDATE ON workflow_versions
    FOR EACH ROW
    EXECUTE FUNCTION ipa_forbid_version_update();
