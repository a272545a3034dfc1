//! (helper: config-risk) — temporary stand-in until the risk policy lands.

use takt_protocol::{RiskAssessment, RiskTier, VerificationReport};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RiskPolicy {
    pub default_tier: RiskTier,
    pub hard_stop_approvals: u32,
}

pub fn assess(
    policy: &RiskPolicy,
    _report: &VerificationReport,
    _judge_overruled: bool,
) -> RiskAssessment {
    RiskAssessment {
        tier: policy.default_tier,
        rules: Vec::new(),
        approvals_required: match policy.default_tier {
            RiskTier::AutoShip => 0,
            RiskTier::Review => 1,
            RiskTier::HardStop => policy.hard_stop_approvals,
        },
    }
}

pub fn escalate(
    assessment: &mut RiskAssessment,
    policy: &RiskPolicy,
    rule: takt_protocol::RiskRule,
) {
    if rule.tier > assessment.tier {
        assessment.tier = rule.tier;
        assessment.approvals_required = match rule.tier {
            RiskTier::AutoShip => 0,
            RiskTier::Review => 1,
            RiskTier::HardStop => policy.hard_stop_approvals,
        };
    }
    assessment.rules.push(rule);
}
