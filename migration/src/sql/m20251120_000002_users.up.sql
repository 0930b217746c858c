-- Users: the seed's table, verbatim.
CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email VARCHAR(255) NOT NULL UNIQUE,
    username VARCHAR(100) NOT NULL UNIQUE,
    full_name VARCHAR(255),
    hashed_password VARCHAR(255) NOT NULL,
    is_active BOOLEAN DEFAULT TRUE,
    is_superuser BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    last_login_at TIMESTAMP WITH TIME ZONE,

    CONSTRAINT email_format CHECK (email ~* '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,}$')
);

CREATE INDEX idx_users_email ON users(email);
CREATE INDEX idx_users_username ON users(username);
CREATE INDEX idx_users_is_active ON users(is_active);

CREATE TRIGGER update_users_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at_column();

-- Row level security lets a user update their own row; this keeps them from granting
-- themselves superuser or reactivating themselves. Only a superuser actor may change either.
CREATE FUNCTION ipa_guard_user_privileges() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF (NEW.is_superuser IS DISTINCT FROM OLD.is_superuser OR NEW.is_active IS DISTINCT FROM OLD.is_active)
       AND NOT ipa_is_superuser() THEN
        RAISE EXCEPTION 'only a superuser may change is_superuser or is_active'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER guard_users_privileges
    BEFORE UPDATE ON users
    FOR EACH ROW
    EXECUTE FUNCTION ipa_guard_user_privileges();
