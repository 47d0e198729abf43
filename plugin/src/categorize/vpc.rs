//! The network APIs that EC2 serves, counted under the service `vpc`: VPCs, subnets, routes,
//! gateways, security groups, network ACLs, endpoints, peering, flow logs, DHCP options, elastic
//! IPs, network interfaces, prefix lists, VPN, transit gateways, traffic mirroring and IPAM.
//!
//! Writes are named in [`WRITES`]; reads ("DescribeVpcs", "GetManagedPrefixListEntries") belong
//! here when the word after the verb starts with one of the [`NOUNS`]. Opening ingress, adding an
//! internet gateway and peering are network exposure; the conditional cases (routes to an
//! internet gateway, allow entries in a network ACL) are decided in [`super::exposure`].

use super::rules;
use super::table;
use super::Action::{self, Create, Delete, LoggingChange, Modify, NetworkExposure, Permissions, Read};

/// VPC write API → action, sorted by name.
const WRITES: &[(&str, Action)] = &[
    ("AcceptAddressTransfer", Modify),
    ("AcceptTransitGatewayMulticastDomainAssociations", Modify),
    ("AcceptTransitGatewayPeeringAttachment", Modify),
    ("AcceptTransitGatewayVpcAttachment", Modify),
    ("AcceptVpcEndpointConnections", Modify),
    ("AcceptVpcPeeringConnection", NetworkExposure),
    ("AdvertiseByoipCidr", Modify),
    ("AllocateAddress", Create),
    ("AllocateIpamPoolCidr", Create),
    ("ApplySecurityGroupsToClientVpnTargetNetwork", Modify),
    ("AssignIpv6Addresses", Modify),
    ("AssignPrivateIpAddresses", Modify),
    ("AssignPrivateNatGatewayAddress", Modify),
    ("AssociateAddress", Modify),
    ("AssociateClientVpnTargetNetwork", Modify),
    ("AssociateDhcpOptions", Modify),
    ("AssociateIpamResourceDiscovery", Modify),
    ("AssociateNatGatewayAddress", Modify),
    ("AssociateRouteTable", Modify),
    ("AssociateSecurityGroupVpc", Modify),
    ("AssociateSubnetCidrBlock", Modify),
    ("AssociateTransitGatewayMulticastDomain", Modify),
    ("AssociateTransitGatewayPolicyTable", Modify),
    ("AssociateTransitGatewayRouteTable", Modify),
    ("AssociateVpcCidrBlock", Modify),
    ("AttachClassicLinkVpc", Modify),
    ("AttachInternetGateway", NetworkExposure),
    ("AttachNetworkInterface", Modify),
    ("AttachVerifiedAccessTrustProvider", Modify),
    ("AttachVpnGateway", Modify),
    ("AuthorizeClientVpnIngress", NetworkExposure),
    ("AuthorizeSecurityGroupEgress", Permissions),
    ("AuthorizeSecurityGroupIngress", Permissions),
    ("CreateCarrierGateway", Create),
    ("CreateClientVpnEndpoint", Create),
    ("CreateClientVpnRoute", Modify),
    ("CreateCustomerGateway", Create),
    ("CreateDefaultSubnet", Create),
    ("CreateDefaultVpc", Create),
    ("CreateDhcpOptions", Create),
    ("CreateEgressOnlyInternetGateway", Create),
    ("CreateFlowLogs", LoggingChange),
    ("CreateInstanceConnectEndpoint", Create),
    ("CreateInternetGateway", NetworkExposure),
    ("CreateIpam", Create),
    ("CreateIpamPool", Create),
    ("CreateIpamResourceDiscovery", Create),
    ("CreateIpamScope", Create),
    ("CreateLocalGatewayRoute", Modify),
    ("CreateLocalGatewayRouteTable", Create),
    ("CreateLocalGatewayRouteTableVpcAssociation", Modify),
    ("CreateManagedPrefixList", Create),
    ("CreateNatGateway", Create),
    ("CreateNetworkAcl", Create),
    ("CreateNetworkAclEntry", Modify),
    ("CreateNetworkInsightsAccessScope", Create),
    ("CreateNetworkInsightsPath", Create),
    ("CreateNetworkInterface", Create),
    ("CreateNetworkInterfacePermission", Permissions),
    ("CreatePublicIpv4Pool", Create),
    ("CreateRoute", Modify),
    ("CreateRouteTable", Create),
    ("CreateSecurityGroup", Create),
    ("CreateSubnet", Create),
    ("CreateSubnetCidrReservation", Create),
    ("CreateTrafficMirrorFilter", Create),
    ("CreateTrafficMirrorFilterRule", Modify),
    ("CreateTrafficMirrorSession", Create),
    ("CreateTrafficMirrorTarget", Create),
    ("CreateTransitGateway", Create),
    ("CreateTransitGatewayConnect", Create),
    ("CreateTransitGatewayConnectPeer", Create),
    ("CreateTransitGatewayMulticastDomain", Create),
    ("CreateTransitGatewayPeeringAttachment", Create),
    ("CreateTransitGatewayPolicyTable", Create),
    ("CreateTransitGatewayPrefixListReference", Modify),
    ("CreateTransitGatewayRoute", Modify),
    ("CreateTransitGatewayRouteTable", Create),
    ("CreateTransitGatewayRouteTableAnnouncement", Create),
    ("CreateTransitGatewayVpcAttachment", Create),
    ("CreateVerifiedAccessEndpoint", Create),
    ("CreateVerifiedAccessGroup", Create),
    ("CreateVerifiedAccessInstance", Create),
    ("CreateVerifiedAccessTrustProvider", Create),
    ("CreateVpc", Create),
    ("CreateVpcBlockPublicAccessExclusion", NetworkExposure),
    ("CreateVpcEndpoint", Create),
    ("CreateVpcEndpointConnectionNotification", Create),
    ("CreateVpcEndpointServiceConfiguration", Create),
    ("CreateVpcPeeringConnection", NetworkExposure),
    ("CreateVpnConnection", Create),
    ("CreateVpnConnectionRoute", Modify),
    ("CreateVpnGateway", Create),
    ("DeleteCarrierGateway", Delete),
    ("DeleteClientVpnEndpoint", Delete),
    ("DeleteClientVpnRoute", Modify),
    ("DeleteCustomerGateway", Delete),
    ("DeleteDhcpOptions", Delete),
    ("DeleteEgressOnlyInternetGateway", Delete),
    ("DeleteFlowLogs", LoggingChange),
    ("DeleteInstanceConnectEndpoint", Delete),
    ("DeleteInternetGateway", Delete),
    ("DeleteIpam", Delete),
    ("DeleteIpamPool", Delete),
    ("DeleteIpamResourceDiscovery", Delete),
    ("DeleteIpamScope", Delete),
    ("DeleteLocalGatewayRoute", Modify),
    ("DeleteLocalGatewayRouteTable", Delete),
    ("DeleteLocalGatewayRouteTableVpcAssociation", Modify),
    ("DeleteManagedPrefixList", Delete),
    ("DeleteNatGateway", Delete),
    ("DeleteNetworkAcl", Delete),
    ("DeleteNetworkAclEntry", Modify),
    ("DeleteNetworkInsightsAccessScope", Delete),
    ("DeleteNetworkInsightsAccessScopeAnalysis", Delete),
    ("DeleteNetworkInsightsAnalysis", Delete),
    ("DeleteNetworkInsightsPath", Delete),
    ("DeleteNetworkInterface", Delete),
    ("DeleteNetworkInterfacePermission", Permissions),
    ("DeletePublicIpv4Pool", Delete),
    ("DeleteRoute", Modify),
    ("DeleteRouteTable", Delete),
    ("DeleteSecurityGroup", Delete),
    ("DeleteSubnet", Delete),
    ("DeleteSubnetCidrReservation", Delete),
    ("DeleteTrafficMirrorFilter", Delete),
    ("DeleteTrafficMirrorFilterRule", Modify),
    ("DeleteTrafficMirrorSession", Delete),
    ("DeleteTrafficMirrorTarget", Delete),
    ("DeleteTransitGateway", Delete),
    ("DeleteTransitGatewayConnect", Delete),
    ("DeleteTransitGatewayConnectPeer", Delete),
    ("DeleteTransitGatewayMulticastDomain", Delete),
    ("DeleteTransitGatewayPeeringAttachment", Delete),
    ("DeleteTransitGatewayPolicyTable", Delete),
    ("DeleteTransitGatewayPrefixListReference", Modify),
    ("DeleteTransitGatewayRoute", Modify),
    ("DeleteTransitGatewayRouteTable", Delete),
    ("DeleteTransitGatewayRouteTableAnnouncement", Delete),
    ("DeleteTransitGatewayVpcAttachment", Delete),
    ("DeleteVerifiedAccessEndpoint", Delete),
    ("DeleteVerifiedAccessGroup", Delete),
    ("DeleteVerifiedAccessInstance", Delete),
    ("DeleteVerifiedAccessTrustProvider", Delete),
    ("DeleteVpc", Delete),
    ("DeleteVpcBlockPublicAccessExclusion", Modify),
    ("DeleteVpcEndpointConnectionNotifications", Delete),
    ("DeleteVpcEndpointServiceConfigurations", Delete),
    ("DeleteVpcEndpoints", Delete),
    ("DeleteVpcPeeringConnection", Delete),
    ("DeleteVpnConnection", Delete),
    ("DeleteVpnConnectionRoute", Modify),
    ("DeleteVpnGateway", Delete),
    ("DeprovisionByoipCidr", Delete),
    ("DeprovisionIpamPoolCidr", Delete),
    ("DeprovisionPublicIpv4PoolCidr", Delete),
    ("DeregisterTransitGatewayMulticastGroupMembers", Modify),
    ("DeregisterTransitGatewayMulticastGroupSources", Modify),
    ("DetachClassicLinkVpc", Modify),
    ("DetachInternetGateway", Modify),
    ("DetachNetworkInterface", Modify),
    ("DetachVerifiedAccessTrustProvider", Modify),
    ("DetachVpnGateway", Modify),
    ("DisableAddressTransfer", Modify),
    ("DisableTransitGatewayRouteTablePropagation", Modify),
    ("DisableVgwRoutePropagation", Modify),
    ("DisableVpcClassicLink", Modify),
    ("DisableVpcClassicLinkDnsSupport", Modify),
    ("DisassociateAddress", Modify),
    ("DisassociateClientVpnTargetNetwork", Modify),
    ("DisassociateIpamResourceDiscovery", Modify),
    ("DisassociateNatGatewayAddress", Modify),
    ("DisassociateRouteTable", Modify),
    ("DisassociateSecurityGroupVpc", Modify),
    ("DisassociateSubnetCidrBlock", Modify),
    ("DisassociateTransitGatewayMulticastDomain", Modify),
    ("DisassociateTransitGatewayPolicyTable", Modify),
    ("DisassociateTransitGatewayRouteTable", Modify),
    ("DisassociateVpcCidrBlock", Modify),
    ("EnableAddressTransfer", Modify),
    ("EnableTransitGatewayRouteTablePropagation", Modify),
    ("EnableVgwRoutePropagation", Modify),
    ("EnableVpcClassicLink", Modify),
    ("EnableVpcClassicLinkDnsSupport", Modify),
    ("ImportClientVpnClientCertificateRevocationList", Modify),
    ("ModifyAddressAttribute", Modify),
    ("ModifyClientVpnEndpoint", Modify),
    ("ModifyIpam", Modify),
    ("ModifyIpamPool", Modify),
    ("ModifyIpamResourceCidr", Modify),
    ("ModifyIpamResourceDiscovery", Modify),
    ("ModifyIpamScope", Modify),
    ("ModifyLocalGatewayRoute", Modify),
    ("ModifyManagedPrefixList", Modify),
    ("ModifyNetworkInterfaceAttribute", Modify),
    ("ModifySecurityGroupRules", Permissions),
    ("ModifySubnetAttribute", Modify),
    ("ModifyTrafficMirrorFilterNetworkServices", Modify),
    ("ModifyTrafficMirrorFilterRule", Modify),
    ("ModifyTrafficMirrorSession", Modify),
    ("ModifyTransitGateway", Modify),
    ("ModifyTransitGatewayPrefixListReference", Modify),
    ("ModifyTransitGatewayVpcAttachment", Modify),
    ("ModifyVerifiedAccessEndpoint", Modify),
    ("ModifyVerifiedAccessEndpointPolicy", Permissions),
    ("ModifyVerifiedAccessGroup", Modify),
    ("ModifyVerifiedAccessGroupPolicy", Permissions),
    ("ModifyVerifiedAccessInstance", Modify),
    ("ModifyVerifiedAccessInstanceLoggingConfiguration", Modify),
    ("ModifyVerifiedAccessTrustProvider", Modify),
    ("ModifyVpcAttribute", Modify),
    ("ModifyVpcBlockPublicAccessExclusion", Modify),
    ("ModifyVpcBlockPublicAccessOptions", Modify),
    ("ModifyVpcEndpoint", Modify),
    ("ModifyVpcEndpointConnectionNotification", Modify),
    ("ModifyVpcEndpointServiceConfiguration", Modify),
    ("ModifyVpcEndpointServicePayerResponsibility", Modify),
    ("ModifyVpcEndpointServicePermissions", Permissions),
    ("ModifyVpcPeeringConnectionOptions", Modify),
    ("ModifyVpcTenancy", Modify),
    ("ModifyVpnConnection", Modify),
    ("ModifyVpnConnectionOptions", Modify),
    ("ModifyVpnTunnelCertificate", Modify),
    ("ModifyVpnTunnelOptions", Modify),
    ("MoveAddressToVpc", Modify),
    ("ProvisionByoipCidr", Create),
    ("ProvisionIpamPoolCidr", Create),
    ("ProvisionPublicIpv4PoolCidr", Create),
    ("RegisterTransitGatewayMulticastGroupMembers", Modify),
    ("RegisterTransitGatewayMulticastGroupSources", Modify),
    ("RejectTransitGatewayMulticastDomainAssociations", Modify),
    ("RejectTransitGatewayPeeringAttachment", Modify),
    ("RejectTransitGatewayVpcAttachment", Modify),
    ("RejectVpcEndpointConnections", Modify),
    ("RejectVpcPeeringConnection", Modify),
    ("ReleaseAddress", Delete),
    ("ReleaseIpamPoolAllocation", Delete),
    ("ReplaceNetworkAclAssociation", Modify),
    ("ReplaceNetworkAclEntry", Modify),
    ("ReplaceRoute", Modify),
    ("ReplaceRouteTableAssociation", Modify),
    ("ReplaceTransitGatewayRoute", Modify),
    ("ReplaceVpnTunnel", Modify),
    ("ResetAddressAttribute", Modify),
    ("ResetNetworkInterfaceAttribute", Modify),
    ("RestoreAddressToClassic", Modify),
    ("RestoreManagedPrefixListVersion", Modify),
    ("RevokeClientVpnIngress", Modify),
    ("RevokeSecurityGroupEgress", Modify),
    ("RevokeSecurityGroupIngress", Modify),
    ("StartNetworkInsightsAccessScopeAnalysis", Create),
    ("StartNetworkInsightsAnalysis", Create),
    ("StartVpcEndpointServicePrivateDnsVerification", Modify),
    ("TerminateClientVpnConnections", Modify),
    ("UnassignIpv6Addresses", Modify),
    ("UnassignPrivateIpAddresses", Modify),
    ("UnassignPrivateNatGatewayAddress", Modify),
    ("UpdateSecurityGroupRuleDescriptionsEgress", Modify),
    ("UpdateSecurityGroupRuleDescriptionsIngress", Modify),
    ("WithdrawByoipCidr", Modify),
];

/// Network resources whose reads belong to `vpc`, sorted. No entry is a prefix of another, so
/// the greatest entry not after a name is the only candidate prefix of it.
const NOUNS: &[&str] = &[
    "Address",
    "ByoipCidr",
    "CarrierGateway",
    "ClientVpn",
    "CustomerGateway",
    "DhcpOptions",
    "EgressOnlyInternetGateway",
    "FlowLogs",
    "InstanceConnectEndpoint",
    "InternetGateway",
    "Ipam",
    "Ipv6Pool",
    "LocalGateway",
    "ManagedPrefixList",
    "NatGateway",
    "NetworkAcl",
    "NetworkInsights",
    "NetworkInterface",
    "PrefixList",
    "PublicIpv4Pool",
    "RouteTable",
    "SecurityGroup",
    "StaleSecurityGroup",
    "Subnet",
    "TrafficMirror",
    "TransitGateway",
    "VerifiedAccess",
    "Vpc",
    "Vpn",
];

/// Whether an EC2 event name is a network API that counts under `vpc`.
pub(super) fn owns(name: &str) -> bool {
    write_action(name).is_some() || is_network_read(name)
}

/// The action of a VPC write API, or `None` for reads.
pub(super) fn write_action(name: &str) -> Option<Action> {
    table::lookup(WRITES, &name)
}

/// A read ("DescribeSecurityGroups") whose object is one of the [`NOUNS`].
fn is_network_read(name: &str) -> bool {
    let (verb, object) = rules::split_verb(name);
    if rules::classify(verb, None) != Read {
        return false;
    }
    let candidate = NOUNS.partition_point(|noun| *noun <= object);
    candidate > 0 && object.starts_with(NOUNS[candidate - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorize::logging;
    use crate::categorize::table::assert_strictly_sorted;

    #[test]
    fn tables_are_sorted_without_duplicates() {
        let names: Vec<_> = WRITES.iter().map(|(name, _)| *name).collect();
        assert_strictly_sorted("vpc::WRITES", &names);
        assert_strictly_sorted("vpc::NOUNS", NOUNS);
    }

    #[test]
    fn logging_entries_are_known_to_the_logging_table() {
        for (name, action) in WRITES {
            if *action == LoggingChange {
                assert!(logging::change("vpc", name, None).is_some(), "{name}");
            }
        }
    }

    #[test]
    fn no_noun_is_a_prefix_of_another() {
        for a in NOUNS {
            for b in NOUNS {
                assert!(a == b || !b.starts_with(a), "{a} is a prefix of {b}");
            }
        }
    }

    #[test]
    fn network_reads_belong_to_vpc() {
        for name in [
            "DescribeVpcs",
            "DescribeSecurityGroups",
            "DescribeSecurityGroupRules",
            "DescribeNetworkAcls",
            "DescribeNetworkInterfaces",
            "DescribeAddresses",
            "DescribeVpcEndpoints",
            "DescribeFlowLogs",
            "DescribeRouteTables",
            "GetManagedPrefixListEntries",
            "DescribeTransitGateways",
            "DescribeVpnConnections",
        ] {
            assert!(owns(name), "{name}");
        }
    }

    #[test]
    fn compute_reads_stay_in_ec2() {
        for name in [
            "DescribeInstances",
            "DescribeImages",
            "DescribeVolumes",
            "GetConsoleOutput",
            "DescribeKeyPairs",
            "DescribeRegions",
        ] {
            assert!(!owns(name), "{name}");
        }
    }
}
