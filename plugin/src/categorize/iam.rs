//! The write APIs of IAM.
//!
//! Everything that changes what a principal may do is a permission change: policies and their
//! versions, attachments, permissions boundaries, group membership, instance profile roles,
//! trust policies, and identity providers (they decide who may assume roles). Everything that
//! gives someone a new secret to sign in with is a credential: access keys, passwords,
//! service-specific credentials, SSH keys, signing certificates and MFA devices.

use super::table;
use super::Action::{self, Create, CredentialCreation, Delete, Modify, Permissions};

/// IAM write API → action, sorted by name.
const WRITES: &[(&str, Action)] = &[
    ("AddClientIDToOpenIDConnectProvider", Permissions),
    ("AddRoleToInstanceProfile", Permissions),
    ("AddUserToGroup", Permissions),
    ("AttachGroupPolicy", Permissions),
    ("AttachRolePolicy", Permissions),
    ("AttachUserPolicy", Permissions),
    ("ChangePassword", CredentialCreation),
    ("CreateAccessKey", CredentialCreation),
    ("CreateAccountAlias", Create),
    ("CreateGroup", Create),
    ("CreateInstanceProfile", Create),
    ("CreateLoginProfile", CredentialCreation),
    ("CreateOpenIDConnectProvider", Permissions),
    ("CreatePolicy", Permissions),
    ("CreatePolicyVersion", Permissions),
    ("CreateRole", Create),
    ("CreateSAMLProvider", Permissions),
    ("CreateServiceLinkedRole", Create),
    ("CreateServiceSpecificCredential", CredentialCreation),
    ("CreateUser", Create),
    ("CreateVirtualMFADevice", CredentialCreation),
    ("DeactivateMFADevice", Modify),
    ("DeleteAccessKey", Delete),
    ("DeleteAccountAlias", Delete),
    ("DeleteAccountPasswordPolicy", Modify),
    ("DeleteGroup", Delete),
    ("DeleteGroupPolicy", Permissions),
    ("DeleteInstanceProfile", Delete),
    ("DeleteLoginProfile", Delete),
    ("DeleteOpenIDConnectProvider", Permissions),
    ("DeletePolicy", Permissions),
    ("DeletePolicyVersion", Permissions),
    ("DeleteRole", Delete),
    ("DeleteRolePermissionsBoundary", Permissions),
    ("DeleteRolePolicy", Permissions),
    ("DeleteSAMLProvider", Permissions),
    ("DeleteSSHPublicKey", Delete),
    ("DeleteServerCertificate", Delete),
    ("DeleteServiceLinkedRole", Delete),
    ("DeleteServiceSpecificCredential", Delete),
    ("DeleteSigningCertificate", Delete),
    ("DeleteUser", Delete),
    ("DeleteUserPermissionsBoundary", Permissions),
    ("DeleteUserPolicy", Permissions),
    ("DeleteVirtualMFADevice", Delete),
    ("DetachGroupPolicy", Permissions),
    ("DetachRolePolicy", Permissions),
    ("DetachUserPolicy", Permissions),
    ("DisableOrganizationsRootCredentialsManagement", Modify),
    ("DisableOrganizationsRootSessions", Modify),
    ("EnableMFADevice", CredentialCreation),
    ("EnableOrganizationsRootCredentialsManagement", Modify),
    ("EnableOrganizationsRootSessions", Modify),
    ("PutGroupPolicy", Permissions),
    ("PutRolePermissionsBoundary", Permissions),
    ("PutRolePolicy", Permissions),
    ("PutUserPermissionsBoundary", Permissions),
    ("PutUserPolicy", Permissions),
    ("RemoveClientIDFromOpenIDConnectProvider", Permissions),
    ("RemoveRoleFromInstanceProfile", Permissions),
    ("RemoveUserFromGroup", Permissions),
    ("ResetServiceSpecificCredential", CredentialCreation),
    ("ResyncMFADevice", Modify),
    ("SetDefaultPolicyVersion", Permissions),
    ("SetSecurityTokenServicePreferences", Modify),
    ("TagInstanceProfile", Modify),
    ("TagMFADevice", Modify),
    ("TagOpenIDConnectProvider", Modify),
    ("TagPolicy", Modify),
    ("TagRole", Modify),
    ("TagSAMLProvider", Modify),
    ("TagServerCertificate", Modify),
    ("TagUser", Modify),
    ("UntagInstanceProfile", Modify),
    ("UntagMFADevice", Modify),
    ("UntagOpenIDConnectProvider", Modify),
    ("UntagPolicy", Modify),
    ("UntagRole", Modify),
    ("UntagSAMLProvider", Modify),
    ("UntagServerCertificate", Modify),
    ("UntagUser", Modify),
    ("UpdateAccessKey", Modify),
    ("UpdateAccountPasswordPolicy", Modify),
    ("UpdateAssumeRolePolicy", Permissions),
    ("UpdateGroup", Modify),
    ("UpdateLoginProfile", CredentialCreation),
    ("UpdateOpenIDConnectProviderThumbprint", Permissions),
    ("UpdateRole", Modify),
    ("UpdateRoleDescription", Modify),
    ("UpdateSAMLProvider", Permissions),
    ("UpdateSSHPublicKey", Modify),
    ("UpdateServerCertificate", Modify),
    ("UpdateServiceSpecificCredential", Modify),
    ("UpdateSigningCertificate", Modify),
    ("UpdateUser", Modify),
    ("UploadSSHPublicKey", CredentialCreation),
    ("UploadServerCertificate", Create),
    ("UploadSigningCertificate", CredentialCreation),
];

/// The action of an IAM write API, or `None` for reads and unknown names.
pub(super) fn write_action(name: &str) -> Option<Action> {
    table::lookup(WRITES, &name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorize::table::assert_strictly_sorted;

    #[test]
    fn table_is_sorted_without_duplicates() {
        let names: Vec<_> = WRITES.iter().map(|(name, _)| *name).collect();
        assert_strictly_sorted("iam::WRITES", &names);
    }

    #[test]
    fn policy_changes_are_permissions_and_keys_are_credentials() {
        assert_eq!(write_action("AttachUserPolicy"), Some(Permissions));
        assert_eq!(write_action("PutRolePolicy"), Some(Permissions));
        assert_eq!(write_action("UpdateAssumeRolePolicy"), Some(Permissions));
        assert_eq!(write_action("AddUserToGroup"), Some(Permissions));
        assert_eq!(write_action("CreateAccessKey"), Some(CredentialCreation));
        assert_eq!(write_action("CreateLoginProfile"), Some(CredentialCreation));
        assert_eq!(write_action("CreateUser"), Some(Create));
        assert_eq!(write_action("DeleteUser"), Some(Delete));
        assert_eq!(write_action("GetUser"), None);
    }
}
