//! Reading forge webhook deliveries: which request or commit a delivery is about, so the daemon
//! can read the request's state again ([`crate::Forge::review_state`]) without waiting for its
//! next poll. Signatures are checked by the server before a payload gets here; this only reads
//! the documented payload shapes (GitHub's `X-GitHub-Event`, GitLab's `X-Gitlab-Event`).

use serde_json::Value;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// The request itself: opened, closed, merged, reopened, new commits, edited.
    Request,
    /// A review, an approval, or a review comment.
    Review,
    /// A check, a job, a pipeline, or a commit status.
    Checks,
}

/// The gist of one delivery; match it to a task by `branch`, `number`, or `sha`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeNotice {
    pub kind: NoticeKind,
    /// The pull request number / merge request iid, when the payload names one.
    pub number: Option<u64>,
    /// The request's head (source) branch, when the payload names it.
    pub branch: Option<String>,
    /// The commit a check or status is about.
    pub sha: Option<String>,
    /// The payload's `action` (`submitted`, `dismissed`, `completed`, `merge`, ...), if any.
    pub action: Option<String>,
}

fn text(value: &Value, path: &[&str]) -> Option<String> {
    let mut value = value;
    for key in path {
        value = value.get(key)?;
    }
    value.as_str().map(str::to_owned)
}

fn number(value: &Value, path: &[&str]) -> Option<u64> {
    let mut value = value;
    for key in path {
        value = value.get(key)?;
    }
    value.as_u64()
}

/// A GitHub delivery (`event` is the `X-GitHub-Event` header). `None` for events that say
/// nothing about a request or its checks (`ping`, `push`, `issues`, ...).
pub fn github_notice(event: &str, payload: &Value) -> Option<ForgeNotice> {
    let action = text(payload, &["action"]);
    let about_pull = |kind| ForgeNotice {
        kind,
        number: number(payload, &["pull_request", "number"]),
        branch: text(payload, &["pull_request", "head", "ref"]),
        sha: text(payload, &["pull_request", "head", "sha"]),
        action: action.clone(),
    };
    match event {
        "pull_request" => Some(about_pull(NoticeKind::Request)),
        "pull_request_review" | "pull_request_review_comment" | "pull_request_review_thread" => {
            Some(about_pull(NoticeKind::Review))
        }
        "check_run" | "check_suite" => {
            let object = payload.get(event)?;
            let first_pull = object
                .get("pull_requests")
                .and_then(Value::as_array)
                .and_then(|pulls| pulls.first());
            Some(ForgeNotice {
                kind: NoticeKind::Checks,
                number: first_pull.and_then(|p| number(p, &["number"])),
                branch: first_pull
                    .and_then(|p| text(p, &["head", "ref"]))
                    .or_else(|| text(object, &["head_branch"]))
                    .or_else(|| text(object, &["check_suite", "head_branch"])),
                sha: text(object, &["head_sha"]),
                action,
            })
        }
        "status" => Some(ForgeNotice {
            kind: NoticeKind::Checks,
            number: None,
            branch: payload
                .get("branches")
                .and_then(Value::as_array)
                .and_then(|b| b.first())
                .and_then(|b| text(b, &["name"])),
            sha: text(payload, &["sha"]),
            action: text(payload, &["state"]),
        }),
        _ => None,
    }
}

/// A GitLab delivery (`event` is the `X-Gitlab-Event` header). `None` for events that say
/// nothing about a merge request or its pipeline.
pub fn gitlab_notice(event: &str, payload: &Value) -> Option<ForgeNotice> {
    let attributes = payload.get("object_attributes");
    match event {
        "Merge Request Hook" => {
            let attributes = attributes?;
            let action = text(attributes, &["action"]);
            let kind = match action.as_deref() {
                Some("approved" | "unapproved" | "approval" | "unapproval") => NoticeKind::Review,
                _ => NoticeKind::Request,
            };
            Some(ForgeNotice {
                kind,
                number: number(attributes, &["iid"]),
                branch: text(attributes, &["source_branch"]),
                sha: text(attributes, &["last_commit", "id"]),
                action,
            })
        }
        "Note Hook" => {
            let attributes = attributes?;
            if text(attributes, &["noteable_type"]).as_deref() != Some("MergeRequest") {
                return None;
            }
            Some(ForgeNotice {
                kind: NoticeKind::Review,
                number: number(payload, &["merge_request", "iid"]),
                branch: text(payload, &["merge_request", "source_branch"]),
                sha: text(payload, &["merge_request", "last_commit", "id"]),
                action: Some("comment".to_owned()),
            })
        }
        "Pipeline Hook" => {
            let attributes = attributes?;
            Some(ForgeNotice {
                kind: NoticeKind::Checks,
                number: number(payload, &["merge_request", "iid"]),
                branch: text(payload, &["merge_request", "source_branch"])
                    .or_else(|| text(attributes, &["ref"])),
                sha: text(attributes, &["sha"]),
                action: text(attributes, &["status"]),
            })
        }
        "Job Hook" => Some(ForgeNotice {
            kind: NoticeKind::Checks,
            number: None,
            branch: text(payload, &["ref"]),
            sha: text(payload, &["sha"]),
            action: text(payload, &["build_status"]),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn github_reviews_checks_and_statuses_name_their_request_or_commit() {
        let review = json!({
            "action": "submitted",
            "review": {"id": 1, "state": "changes_requested", "user": {"login": "carol"}},
            "pull_request": {"number": 7, "head": {"ref": "takt/t1", "sha": "abc"}, "base": {"ref": "main"}},
        });
        assert_eq!(
            github_notice("pull_request_review", &review),
            Some(ForgeNotice {
                kind: NoticeKind::Review,
                number: Some(7),
                branch: Some("takt/t1".to_owned()),
                sha: Some("abc".to_owned()),
                action: Some("submitted".to_owned()),
            })
        );
        let check = json!({
            "action": "completed",
            "check_run": {
                "id": 5, "head_sha": "def", "status": "completed", "conclusion": "failure",
                "check_suite": {"head_branch": "takt/t1"},
                "pull_requests": [{"number": 7, "head": {"ref": "takt/t1", "sha": "def"}}],
            },
        });
        let notice = github_notice("check_run", &check).unwrap();
        assert_eq!(
            (notice.kind, notice.number, notice.sha.as_deref()),
            (NoticeKind::Checks, Some(7), Some("def"))
        );
        let status = json!({"sha": "def", "state": "failure", "context": "ci", "branches": [{"name": "takt/t1"}]});
        let notice = github_notice("status", &status).unwrap();
        assert_eq!(notice.branch.as_deref(), Some("takt/t1"));
        assert_eq!(notice.action.as_deref(), Some("failure"));
        assert_eq!(github_notice("ping", &json!({"zen": "x"})), None);
    }

    #[test]
    fn gitlab_merge_request_notes_and_pipelines_name_their_request() {
        let approved = json!({
            "object_kind": "merge_request",
            "object_attributes": {"iid": 3, "source_branch": "takt/t2", "action": "approved", "last_commit": {"id": "abc"}},
        });
        let notice = gitlab_notice("Merge Request Hook", &approved).unwrap();
        assert_eq!(
            (notice.kind, notice.number, notice.branch.as_deref()),
            (NoticeKind::Review, Some(3), Some("takt/t2"))
        );
        let note = json!({
            "object_kind": "note",
            "object_attributes": {"noteable_type": "MergeRequest", "note": "please fix"},
            "merge_request": {"iid": 3, "source_branch": "takt/t2"},
        });
        assert_eq!(gitlab_notice("Note Hook", &note).unwrap().number, Some(3));
        let issue_note = json!({"object_attributes": {"noteable_type": "Issue"}});
        assert_eq!(gitlab_notice("Note Hook", &issue_note), None);
        let pipeline = json!({
            "object_kind": "pipeline",
            "object_attributes": {"id": 9, "ref": "takt/t2", "sha": "abc", "status": "failed"},
            "merge_request": {"iid": 3, "source_branch": "takt/t2"},
        });
        let notice = gitlab_notice("Pipeline Hook", &pipeline).unwrap();
        assert_eq!(
            (notice.kind, notice.sha.as_deref(), notice.action.as_deref()),
            (NoticeKind::Checks, Some("abc"), Some("failed"))
        );
    }
}
