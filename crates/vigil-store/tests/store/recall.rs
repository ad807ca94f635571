//! Decisions and memory: acceptances and false positives carried to reworded designs and not to
//! unrelated ones, expiry, approved patterns, precedents and feedback.

use vigil_analysis::score::SeverityBands;
use vigil_core::Review;
use vigil_store::decisions::finding_text;
use vigil_store::recall::Disposition;
use vigil_store::{recall, Decision, DecisionKind, DecisionScope, RecallConfig, RecallContext};

use crate::{analyze, embedder, stores};

fn context() -> RecallContext {
    RecallContext {
        org: "acme".to_owned(),
        today: "2026-12-04".to_owned(),
    }
}

fn decision(id: &str, kind: DecisionKind, scope: DecisionScope, rationale: &str) -> Decision {
    Decision {
        id: id.to_owned(),
        kind,
        scope,
        fingerprint: None,
        rule: None,
        component: None,
        artifact_id: None,
        external_key: None,
        tool: None,
        team: None,
        project: None,
        rationale: rationale.to_owned(),
        owner: None,
        approver: None,
        expires_on: None,
        link: None,
        context: String::new(),
        created_at_ms: 0,
    }
}

/// A risk acceptance of `finding` in `review`, expiring on `expires_on`.
fn acceptance(review: &Review, rule: &str, expires_on: &str) -> Decision {
    let f = review.findings.iter().find(|f| f.rule == rule).unwrap();
    Decision {
        fingerprint: Some(f.id.clone()),
        rule: Some(f.rule.clone()),
        artifact_id: Some(review.artifact.clone()),
        external_key: Some("PAY-7".to_owned()),
        owner: Some("payments lead".to_owned()),
        approver: Some("CISO".to_owned()),
        expires_on: Some(expires_on.to_owned()),
        context: finding_text(f),
        ..decision(
            "d-accept",
            DecisionKind::RiskAccepted,
            DecisionScope::Finding,
            "ledger disks sit in a locked cage; encryption lands with the Q3 migration",
        )
    }
}

/// The rules raised in all of the reviews, in the first review's order.
fn common_rules(reviews: &[&Review]) -> Vec<String> {
    reviews[0]
        .findings
        .iter()
        .map(|f| f.rule.clone())
        .filter(|r| {
            reviews
                .iter()
                .all(|rv| rv.findings.iter().any(|f| f.rule == *r))
        })
        .collect()
}

async fn consult(
    s: &crate::Stores,
    review: &mut Review,
) -> Vec<vigil_store::recall::FindingRecall> {
    let feedback = s.ops.dispositions("acme").await.unwrap();
    recall(
        &s.memory,
        &feedback,
        review,
        &context(),
        &embedder().unwrap(),
        &RecallConfig::default(),
        &SeverityBands::default(),
    )
    .await
    .unwrap()
}

fn disposition_of(
    review: &Review,
    out: &[vigil_store::recall::FindingRecall],
    rule: &str,
) -> Disposition {
    let i = review.findings.iter().position(|f| f.rule == rule).unwrap();
    out[i].disposition
}

#[tokio::test]
async fn an_acceptance_applies_to_the_reworded_design_and_not_to_an_unrelated_one() {
    let s = stores().await.unwrap();
    let (original, _) = analyze("payments.md", "docs/payments.md").unwrap();
    let (mut reworded, _) = analyze("payments-reworded.md", "docs/payments-v2.md").unwrap();
    let (mut unrelated, _) = analyze("payroll.md", "docs/payroll.md").unwrap();
    // The three designs raise the same rule on their store; only the first two are one design.
    let rule = &"VGL-I-030".to_owned();
    assert!(common_rules(&[&original, &reworded, &unrelated]).contains(rule));

    s.memory
        .add_decisions(
            &[acceptance(&original, rule, "2027-06-30")],
            &embedder().unwrap(),
        )
        .await
        .unwrap();

    let out = consult(&s, &mut reworded).await;
    assert_eq!(
        disposition_of(&reworded, &out, rule),
        Disposition::Accepted,
        "{out:#?}"
    );
    let out = consult(&s, &mut unrelated).await;
    assert_eq!(
        disposition_of(&unrelated, &out, rule),
        Disposition::Open,
        "{out:#?}"
    );
}

#[tokio::test]
async fn an_expired_acceptance_reopens_the_finding() {
    let s = stores().await.unwrap();
    let (mut original, _) = analyze("payments.md", "docs/payments.md").unwrap();
    let rule = original.findings[0].rule.clone();
    s.memory
        .add_decisions(
            &[acceptance(&original, &rule, "2026-01-31")],
            &embedder().unwrap(),
        )
        .await
        .unwrap();
    let out = consult(&s, &mut original).await;
    assert_eq!(
        disposition_of(&original, &out, &rule),
        Disposition::Reopened
    );
    assert!(
        out[0].reason.contains("expired on 2026-01-31"),
        "{}",
        out[0].reason
    );
}

#[tokio::test]
async fn a_false_positive_on_a_component_applies_wherever_the_component_appears() {
    let s = stores().await.unwrap();
    let (mut original, _) = analyze("payments.md", "docs/payments.md").unwrap();
    let f = original.findings[0].clone();
    let d = Decision {
        rule: Some(f.rule.clone()),
        component: Some(f.element_name.clone()),
        ..decision(
            "d-fp",
            DecisionKind::FalsePositive,
            DecisionScope::RuleOnComponent,
            "handled by the platform",
        )
    };
    s.memory
        .add_decisions(&[d], &embedder().unwrap())
        .await
        .unwrap();
    let out = consult(&s, &mut original).await;
    assert_eq!(out[0].disposition, Disposition::FalsePositive);
    assert_eq!(out[0].decision_id.as_deref(), Some("d-fp"));
    assert!(
        out[0].reason.contains(&format!("rule {} on ", f.rule)),
        "{}",
        out[0].reason
    );
}

#[tokio::test]
async fn a_decision_for_one_team_stays_in_that_team() {
    let s = stores().await.unwrap();
    let (original, _) = analyze("payments.md", "docs/payments.md").unwrap();
    let f = original.findings[0].clone();
    let d = Decision {
        rule: Some(f.rule.clone()),
        component: Some(f.element_name.clone()),
        team: Some("Payments".to_owned()),
        ..decision(
            "d-team",
            DecisionKind::FalsePositive,
            DecisionScope::RuleOnComponent,
            "the payments platform terminates this for us",
        )
    };
    s.memory
        .add_decisions(&[d], &embedder().unwrap())
        .await
        .unwrap();
    for (team, applies) in [
        (Some("payments"), true),
        (Some("warehouse"), false),
        (None, false),
    ] {
        let mut review = original.clone();
        review.meta.team = team.map(str::to_owned);
        let out = consult(&s, &mut review).await;
        let got = out[0].decision_id.as_deref() == Some("d-team");
        assert_eq!(got, applies, "team {team:?}: {}", out[0].reason);
    }
}

#[tokio::test]
async fn an_approved_pattern_counts_as_a_stated_control() {
    let s = stores().await.unwrap();
    let embedder = embedder().unwrap();
    let (mut review, record) = analyze("checkout-v2.md", "docs/checkout.md").unwrap();
    s.memory.put_artifact(&record, &embedder).await.unwrap();
    let rule = review.findings[0].rule.clone();
    let d = Decision {
        rule: Some(rule.clone()),
        context: "Service-to-service calls use mutual TLS, and support users sign in with \
                  single sign-on and MFA."
            .to_owned(),
        ..decision(
            "d-mesh",
            DecisionKind::ApprovedPattern,
            DecisionScope::Pattern,
            "mTLS between services and SSO with MFA for staff",
        )
    };
    s.memory.add_decisions(&[d], &embedder).await.unwrap();
    let out = consult(&s, &mut review).await;
    assert_eq!(out[0].disposition, Disposition::Controlled, "{out:#?}");
}

#[tokio::test]
async fn similar_past_mitigations_come_back_as_precedents() {
    let s = stores().await.unwrap();
    let embedder = embedder().unwrap();
    let (mut review, _) = analyze("payments-reworded.md", "docs/payments-v2.md").unwrap();
    let (past, _) = analyze("payments.md", "docs/payments.md").unwrap();
    let rule = review.findings[0].rule.clone();
    let past_finding = past.findings.iter().find(|f| f.rule == rule).unwrap();
    let mitigated = Decision {
        external_key: Some("PAY-412".to_owned()),
        link: Some("https://git.example.invalid/pay/pull/412".to_owned()),
        context: finding_text(past_finding),
        ..decision(
            "d-pay-412",
            DecisionKind::Mitigated,
            DecisionScope::Finding,
            "tokenizing card data before it reaches the ledger",
        )
    };
    let distractors = [
        (
            "d-hr",
            "The leave-request form keeps employee holidays in a spreadsheet.",
        ),
        (
            "d-cdn",
            "Static marketing images are served from the CDN without cookies.",
        ),
        (
            "d-ci",
            "Build logs in the CI runner are kept for seven days.",
        ),
    ]
    .map(|(id, text)| Decision {
        context: text.to_owned(),
        ..decision(
            id,
            DecisionKind::Mitigated,
            DecisionScope::Finding,
            "reviewed",
        )
    });
    let mut all = vec![mitigated];
    all.extend(distractors);
    s.memory.add_decisions(&all, &embedder).await.unwrap();

    let out = consult(&s, &mut review).await;
    let i = review.findings.iter().position(|f| f.rule == rule).unwrap();
    let p = out[i].precedents.first().expect("a precedent");
    assert_eq!(p.decision_id, "d-pay-412");
    assert!(
        p.summary.starts_with("mitigated in PAY-412"),
        "{}",
        p.summary
    );

    let q = finding_text(&review.findings[i]);
    let v = vigil_store::TextEmbedder::embed(&embedder, &[q.as_str()]).unwrap();
    let hits = s.memory.search_decisions(&q, &v[0], None, 3).await.unwrap();
    assert_eq!(hits[0].0.decision.id, "d-pay-412");
}

#[tokio::test]
async fn a_rule_often_marked_false_positive_scores_lower_with_the_reason() {
    let s = stores().await.unwrap();
    let (mut review, _) = analyze("payments.md", "docs/payments.md").unwrap();
    let rule = review.findings[0].rule.clone();
    let before = review.findings[0].score.value;
    for d in ["false_positive"; 5].iter().chain(&["mitigated"]) {
        s.ops.count_disposition("acme", &rule, d).await.unwrap();
    }
    consult(&s, &mut review).await;
    let f = &review.findings[0];
    assert!(f.score.value < before, "{} -> {}", before, f.score.value);
    let reason = f.score.adjustments.last().unwrap();
    assert!(reason.contains("5 of 6"), "{reason}");
}
