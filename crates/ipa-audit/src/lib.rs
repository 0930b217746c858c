#![doc = include_str!("../README.md")]

ipa_kernel::label_enum!(
    /// What an audit row records. Stored as the `audit_action` enum.
    AuditAction, "audit action" {
        /// Something was created.
        Create => "create",
        /// Something was changed.
        Update => "update",
        /// Something was deleted.
        Delete => "delete",
        /// A user signed in (or tried to).
        Login => "login",
        /// A user signed out.
        Logout => "logout",
        /// A workflow was run.
        Execute => "execute",
        /// A run was cancelled.
        Cancel => "cancel",
    }
);
