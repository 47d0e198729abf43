//! Network exposure and the VPC carve-out.

use super::{call, metric, with_params};
use crate::categorize::{categorize, Action, Input};

#[test]
fn security_group_ingress_from_the_world_is_vpc_network_exposure() {
    let world = r#"{"groupId":"sg-1","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":22,"toPort":22,
        "groups":{},"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]},"ipv6Ranges":{},"prefixListIds":{}}]}}"#;
    let category = categorize(&with_params(
        call("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
        world,
    ));
    assert_eq!(category.service, "vpc");
    assert_eq!(category.action, Action::NetworkExposure);
    assert_eq!(category.metric, "aws.vpc.network_exposure");
    assert!(category.flags.network_exposure);
    let v6 = r#"{"groupId":"sg-1","ipPermissions":{"items":[{"ipv6Ranges":{"items":[{"cidrIpv6":"::/0"}]}}]}}"#;
    assert_eq!(
        metric(with_params(
            call("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
            v6
        )),
        "aws.vpc.network_exposure"
    );
    let wide = r#"{"groupId":"sg-1","ipPermissions":{"items":[{"ipRanges":{"items":[{"cidrIp":"52.0.0.0/8"}]}}]}}"#;
    assert_eq!(
        metric(with_params(
            call("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
            wide
        )),
        "aws.vpc.network_exposure"
    );
    let modified = r#"{"GroupId":"sg-1","SecurityGroupRule":{"SecurityGroupRuleId":"sgr-1",
        "SecurityGroupRule":{"IpProtocol":"tcp","FromPort":3389,"ToPort":3389,"CidrIpv4":"0.0.0.0/0"}}}"#;
    assert_eq!(
        metric(with_params(
            call("ec2.amazonaws.com", "ModifySecurityGroupRules"),
            modified
        )),
        "aws.vpc.network_exposure"
    );
    for wide in [
        "192.168.0.0/1",
        "172.16.0.0/4",
        "100.64.0.0/8",
        "10.0.0.0/7",
        "fc00::/6",
    ] {
        let params = format!(
            r#"{{"groupId":"sg-1","ipPermissions":{{"items":[{{"ipRanges":{{"items":[{{"cidrIp":"{wide}","cidrIpv6":"{wide}"}}]}}}}]}}}}"#
        );
        let category = categorize(&Input {
            request_parameters: Some(&params),
            ..call("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress")
        });
        assert_eq!(category.metric, "aws.vpc.network_exposure", "{wide}");
    }
    let rds = r#"{"dBSecurityGroupName":"db","cIDRIP":"0.0.0.0/0"}"#;
    assert_eq!(
        metric(with_params(
            call("rds.amazonaws.com", "AuthorizeDBSecurityGroupIngress"),
            rds
        )),
        "aws.rds.network_exposure"
    );
}

#[test]
fn security_group_rules_that_do_not_open_to_the_world_are_permission_changes() {
    let between_groups = r#"{"groupId":"sg-1","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":5432,"toPort":5432,
        "groups":{"items":[{"groupId":"sg-2"}]},"ipRanges":{},"ipv6Ranges":{},"prefixListIds":{}}]}}"#;
    let private = r#"{"groupId":"sg-1","ipPermissions":{"items":[{"ipRanges":{"items":[{"cidrIp":"10.0.0.0/8"}]}}]}}"#;
    let office =
        r#"{"groupId":"sg-1","ipPermissions":{"items":[{"ipRanges":{"items":[{"cidrIp":"203.0.113.0/24"}]}}]}}"#;
    for params in [between_groups, private, office] {
        let category = categorize(&with_params(
            call("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
            params,
        ));
        assert_eq!(category.metric, "aws.vpc.permissions", "{params}");
        assert!(!category.flags.network_exposure, "{params}");
    }
    let egress = r#"{"groupId":"sg-1","ipPermissions":{"items":[{"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}}"#;
    assert_eq!(
        metric(with_params(
            call("ec2.amazonaws.com", "AuthorizeSecurityGroupEgress"),
            egress
        )),
        "aws.vpc.permissions"
    );
    assert_eq!(
        metric(call("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress")),
        "aws.vpc.permissions"
    );
    assert_eq!(
        metric(call("rds.amazonaws.com", "AuthorizeDBSecurityGroupIngress")),
        "aws.rds.permissions"
    );
}

#[test]
fn network_apis_of_ec2_count_under_vpc() {
    assert_eq!(metric(call("ec2.amazonaws.com", "CreateVpc")), "aws.vpc.create");
    assert_eq!(metric(call("ec2.amazonaws.com", "DeleteSubnet")), "aws.vpc.delete");
    assert_eq!(
        metric(call("ec2.amazonaws.com", "DescribeSecurityGroups")),
        "aws.vpc.read"
    );
    assert_eq!(metric(call("ec2.amazonaws.com", "AllocateAddress")), "aws.vpc.create");
    assert_eq!(
        metric(call("ec2.amazonaws.com", "ModifySecurityGroupRules")),
        "aws.vpc.permissions"
    );
    assert_eq!(metric(call("ec2.amazonaws.com", "DescribeInstances")), "aws.ec2.read");
}

#[test]
fn route_to_internet_gateway_is_network_exposure() {
    let to_igw = with_params(
        call("ec2.amazonaws.com", "CreateRoute"),
        r#"{"routeTableId":"rtb-1","destinationCidrBlock":"0.0.0.0/0","gatewayId":"igw-0abc"}"#,
    );
    assert_eq!(metric(to_igw), "aws.vpc.network_exposure");
    let to_nat = with_params(
        call("ec2.amazonaws.com", "CreateRoute"),
        r#"{"routeTableId":"rtb-1","destinationCidrBlock":"0.0.0.0/0","natGatewayId":"nat-1"}"#,
    );
    assert_eq!(metric(to_nat), "aws.vpc.modify");
}

#[test]
fn allowing_network_acl_entry_is_network_exposure() {
    let params =
        r#"{"networkAclId":"acl-1","ruleNumber":100,"ruleAction":"allow","egress":false,"cidrBlock":"0.0.0.0/0"}"#;
    let allow = with_params(call("ec2.amazonaws.com", "CreateNetworkAclEntry"), params);
    assert_eq!(metric(allow), "aws.vpc.network_exposure");
    let deny = with_params(
        call("ec2.amazonaws.com", "ReplaceNetworkAclEntry"),
        r#"{"networkAclId":"acl-1","ruleAction":"deny"}"#,
    );
    assert_eq!(metric(deny), "aws.vpc.modify");
}

#[test]
fn snapshot_shared_with_everyone_is_network_exposure() {
    let public = with_params(
        call("ec2.amazonaws.com", "ModifySnapshotAttribute"),
        r#"{"snapshotId":"snap-1","createVolumePermission":{"add":{"items":[{"group":"all"}]}},"attributeType":"CREATE_VOLUME_PERMISSION"}"#,
    );
    let category = categorize(&public);
    assert_eq!(category.metric, "aws.ec2.network_exposure");
    assert!(category.flags.permission_change && category.flags.network_exposure);

    let withdrawn = with_params(
        call("ec2.amazonaws.com", "ModifySnapshotAttribute"),
        r#"{"snapshotId":"snap-1","createVolumePermission":{"remove":{"items":[{"group":"all"}]}}}"#,
    );
    assert_eq!(metric(withdrawn), "aws.ec2.permissions");
    let one_account = with_params(
        call("ec2.amazonaws.com", "ModifyImageAttribute"),
        r#"{"imageId":"ami-1","launchPermission":{"add":{"items":[{"userId":"123456789012"}]}}}"#,
    );
    assert_eq!(metric(one_account), "aws.ec2.permissions");
}

#[test]
fn lambda_open_to_everyone_is_network_exposure() {
    let public_url = with_params(
        call("lambda.amazonaws.com", "CreateFunctionUrlConfig20211031"),
        r#"{"functionName":"f","authType":"NONE"}"#,
    );
    assert_eq!(metric(public_url), "aws.lambda.network_exposure");
    let iam_url = with_params(
        call("lambda.amazonaws.com", "CreateFunctionUrlConfig20211031"),
        r#"{"functionName":"f","authType":"AWS_IAM"}"#,
    );
    assert_eq!(metric(iam_url), "aws.lambda.create");
    let public_invoke = with_params(
        call("lambda.amazonaws.com", "AddPermission20150331v2"),
        r#"{"functionName":"f","statementId":"s","action":"lambda:InvokeFunction","principal":"*"}"#,
    );
    let category = categorize(&public_invoke);
    assert_eq!(category.metric, "aws.lambda.network_exposure");
    assert!(category.flags.permission_change);
}

#[test]
fn publicly_accessible_database_is_network_exposure() {
    let input = with_params(
        call("rds.amazonaws.com", "ModifyDBInstance"),
        r#"{"dBInstanceIdentifier":"db","publiclyAccessible":true,"applyImmediately":true}"#,
    );
    assert_eq!(metric(input), "aws.rds.network_exposure");
    let shared = with_params(
        call("rds.amazonaws.com", "ModifyDBSnapshotAttribute"),
        r#"{"dBSnapshotIdentifier":"s","attributeName":"restore","valuesToAdd":["all"]}"#,
    );
    assert_eq!(metric(shared), "aws.rds.network_exposure");
}

#[test]
fn load_balancers_are_internet_facing_unless_internal() {
    let facing = with_params(
        call("elasticloadbalancing.amazonaws.com", "CreateLoadBalancer"),
        r#"{"name":"lb","subnets":["subnet-1"],"type":"application"}"#,
    );
    assert_eq!(metric(facing), "aws.elasticloadbalancing.network_exposure");
    let internal = with_params(
        call("elasticloadbalancing.amazonaws.com", "CreateLoadBalancer"),
        r#"{"name":"lb","scheme":"internal"}"#,
    );
    assert_eq!(metric(internal), "aws.elasticloadbalancing.create");
}

#[test]
fn document_shared_with_everyone_is_exposure_over_permission() {
    let input = with_params(
        call("ssm.amazonaws.com", "ModifyDocumentPermission"),
        r#"{"name":"doc","permissionType":"Share","accountIdsToAdd":["all"]}"#,
    );
    let category = categorize(&input);
    assert_eq!(category.action, Action::NetworkExposure);
    assert!(category.flags.permission_change && category.flags.network_exposure);
}

#[test]
fn role_trusting_everyone_is_network_exposure() {
    let params = r#"{"roleName":"r","assumeRolePolicyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"*\"},\"Action\":\"sts:AssumeRole\"}]}"}"#;
    let category = categorize(&with_params(
        call("iam.amazonaws.com", "UpdateAssumeRolePolicy"),
        params,
    ));
    assert_eq!(category.metric, "aws.iam.network_exposure");
    assert!(category.flags.permission_change);
}
