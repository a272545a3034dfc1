//! Credentials a change adds: the added lines of its patch matched against the shapes of
//! well-known tokens and against `password = "..."`-style assignments, so a change that would
//! publish a secret is stopped and named (never the secret itself).

use std::sync::LazyLock;

use regex::Regex;
use takt_protocol::SecretHit;

use crate::diff::file_patches;

/// Token shapes with a vendor prefix: precise enough to flag wherever they appear.
const TOKEN_PATTERNS: [(&str, &str); 6] = [
    ("aws_access_key", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    (
        "private_key",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
    ),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})\b",
    ),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    // Also matches Anthropic keys (`sk-ant-...`); those are left to `anthropic_key`.
    ("openai_key", r"\bsk-[A-Za-z0-9_-]{20,}"),
    ("slack_token", r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
];

/// `<name>[:= or => or = or :]<value>` where the name (with optional prefix words such as
/// `DB_` or `client.` and an optional `_key` suffix) says it holds a credential, and the value is
/// a quoted literal or a bare word of at least 8 characters.
const SECRET_ASSIGNMENT: &str = r#"(?i)(?:^|[^a-z0-9])(?:[a-z0-9]+[_.-])*(?:password|passwd|secret|api[_-]?key|apikey|token|access[_-]?key)(?:[_-]?key)?["']?\s*(?::=|=>|[:=])\s*(?:"([^"\s]{8,})"|'([^'\s]{8,})'|`([^`\s]{8,})`|([^\s"'`,;()\[\]{}<>]{8,}))"#;

struct TokenPattern {
    kind: &'static str,
    regex: Regex,
}

/// Compiled once. The patterns are constants; `every_pattern_compiles` guarantees none is
/// dropped here.
static TOKENS: LazyLock<Vec<TokenPattern>> = LazyLock::new(|| {
    TOKEN_PATTERNS
        .iter()
        .filter_map(|&(kind, pattern)| {
            Regex::new(pattern)
                .ok()
                .map(|regex| TokenPattern { kind, regex })
        })
        .collect()
});

static ASSIGNMENT: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(SECRET_ASSIGNMENT).ok());

/// Every added line of a unified diff (`git diff -U0 <base> <commit>`) that looks like a
/// credential, with its path and line number in the new file. A line gets one hit per token
/// kind; the generic `generic_secret_assignment` is only reported for lines no token pattern
/// matched, so `api_key = "sk-..."` is one `openai_key` hit, not two.
pub fn secret_hits(patch: &str) -> Vec<SecretHit> {
    let mut hits = Vec::new();
    for file in file_patches(patch) {
        for &(line, text) in &file.added {
            for kind in secret_kinds(text) {
                hits.push(SecretHit {
                    path: file.path.clone(),
                    line,
                    kind: kind.to_owned(),
                });
            }
        }
    }
    hits
}

fn secret_kinds(text: &str) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = TOKENS
        .iter()
        .filter(|pattern| {
            pattern.regex.find_iter(text).any(|found| {
                !(pattern.kind == "openai_key" && found.as_str().starts_with("sk-ant-"))
            })
        })
        .map(|pattern| pattern.kind)
        .collect();
    if kinds.is_empty() && has_secret_assignment(text) {
        kinds.push("generic_secret_assignment");
    }
    kinds
}

fn has_secret_assignment(text: &str) -> bool {
    let Some(assignment) = ASSIGNMENT.as_ref() else {
        return false;
    };
    assignment.captures_iter(text).any(|captures| {
        let quoted = [1, 2, 3]
            .into_iter()
            .find_map(|group| captures.get(group))
            .map(|value| value.as_str());
        match (quoted, captures.get(4)) {
            (Some(value), _) => !is_placeholder(value),
            (None, Some(bare)) => is_credential_like_bare_word(bare.as_str()),
            (None, None) => false,
        }
    })
}

/// Unquoted values are mostly code (`token = self.token`, `password: DEFAULT_PASSWORD`); a bare
/// credential (`.env`, YAML, a URL query) almost always mixes letters and digits.
fn is_credential_like_bare_word(value: &str) -> bool {
    value.bytes().any(|byte| byte.is_ascii_digit())
        && value.bytes().any(|byte| byte.is_ascii_alphabetic())
        && !is_placeholder(value)
}

/// Values that stand for a secret instead of being one: `xxxxxxxx`, `********`, `changeme`,
/// `${VAR}`, `$VAR`, `{{ template }}`, `<your-token>`, `your_api_key_here`.
fn is_placeholder(value: &str) -> bool {
    let lowercase = value.to_ascii_lowercase();
    let mut chars = value.chars();
    let first = chars.next();
    let all_one_char = first.is_some_and(|first| chars.all(|other| other == first));
    let all_xs = lowercase.chars().all(|char| char == 'x');
    all_one_char
        || all_xs
        || value.starts_with('$')
        || value.contains("${")
        || value.contains("{{")
        || (value.starts_with('<') && value.ends_with('>'))
        || ["changeme", "placeholder", "redacted", "your_", "your-"]
            .iter()
            .any(|marker| lowercase.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token-shaped strings are assembled at run time so the source holds no literal that
    /// secret scanners (or this module) would flag.
    fn aws_key() -> String {
        format!("AKIA{}", "IOSFODNN7EXAMPLE")
    }

    fn hit(path: &str, line: u32, kind: &str) -> SecretHit {
        SecretHit {
            path: path.to_owned(),
            line,
            kind: kind.to_owned(),
        }
    }

    fn one_file_patch(path: &str, hunk_header: &str, lines: &[String]) -> String {
        format!(
            "diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n{hunk_header}\n{}\n",
            lines.join("\n")
        )
    }

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(TOKENS.len(), TOKEN_PATTERNS.len());
        assert!(ASSIGNMENT.is_some());
    }

    #[test]
    fn each_token_kind_is_found_with_its_path_and_line() {
        let begin = format!("-----BEGIN {}-----", "OPENSSH PRIVATE KEY");
        let github = format!("ghp_{}", "a1B2c3D4e5F6".repeat(3));
        let fine_grained = format!("github_pat_{}_{}", "11ABCDEFG0".repeat(3), "x9Y".repeat(20));
        let openai = format!("sk-proj-{}", "Ab3_-xY9".repeat(4));
        let anthropic = format!("sk-ant-api03-{}", "Qw3rTy_-".repeat(5));
        let slack = format!("xoxb-{}-{}-{}", "123456789012", "1234567890123", "AbCdEfGh");
        let patch = format!(
            "diff --git a/config/deploy.env b/config/deploy.env
index 3b18e51..9f2c1d4 100644
--- a/config/deploy.env
+++ b/config/deploy.env
@@ -3,0 +4,2 @@ REGION=eu-west-1
+AWS_ACCESS_KEY_ID={aws}
+REGION_FALLBACK=us-east-1
@@ -10 +12 @@ LOG=info
-OLD=1
+GH={github}
diff --git a/keys/id_ed25519 b/keys/id_ed25519
new file mode 100644
index 0000000..e69de29
--- /dev/null
+++ b/keys/id_ed25519
@@ -0,0 +1,3 @@
+{begin}
+b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
+-----END OPENSSH PRIVATE KEY-----
diff --git a/src/client.py b/src/client.py
index 5d41402..0b4e7c3 100644
--- a/src/client.py
+++ b/src/client.py
@@ -20,0 +21,4 @@ def connect():
+    openai.api_key = \"{openai}\"
+    anthropic = Anthropic(api_key=\"{anthropic}\")
+    slack = WebClient(token=\"{slack}\")
+    gh = Github(\"{fine_grained}\")
",
            aws = aws_key(),
        );
        assert_eq!(
            secret_hits(&patch),
            vec![
                hit("config/deploy.env", 4, "aws_access_key"),
                hit("config/deploy.env", 12, "github_token"),
                hit("keys/id_ed25519", 1, "private_key"),
                hit("src/client.py", 21, "openai_key"),
                hit("src/client.py", 22, "anthropic_key"),
                hit("src/client.py", 23, "slack_token"),
                hit("src/client.py", 24, "github_token"),
            ]
        );
    }

    #[test]
    fn hits_never_carry_the_secret() {
        let line = format!("+key = {}", aws_key());
        let patch = one_file_patch("a.env", "@@ -0,0 +1 @@", &[line]);
        let hits = secret_hits(&patch);
        assert_eq!(hits.len(), 1);
        let json = serde_json::to_string(&hits).unwrap();
        assert!(!json.contains(&aws_key()), "{json}");
    }

    #[test]
    fn secret_assignments_in_several_syntaxes() {
        let lines = [
            r#"+DB_PASSWORD = "s3cr3t-Pa55w0rd""#,
            r#"+  api_key: 'a8f5f167f44f4964e6c998dee827110c'"#,
            r#"+    "client_secret": "Zt9Qm2xLp4Rw8Vn6","#,
            "+SECRET=9f86d081884c7d659a2feaa0c55ad015",
            "+\ttoken := \"ya29.a0AfH6SMBx3kL\"",
            "+https://api.example.com/v1?apikey=5d41402abc4b2a76&x=1",
            r#"+login(user, passwd="hunter2hunter2")"#,
        ]
        .map(str::to_owned);
        let patch = one_file_patch("settings.yml", "@@ -0,0 +1,7 @@", &lines);
        let lines_hit: Vec<u32> = secret_hits(&patch)
            .into_iter()
            .inspect(|found| assert_eq!(found.kind, "generic_secret_assignment"))
            .map(|found| found.line)
            .collect();
        assert_eq!(lines_hit, vec![1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn placeholders_code_and_removed_lines_are_ignored() {
        let removed_key = format!("-AWS_ACCESS_KEY_ID={}", aws_key());
        let lines = [
            removed_key.as_str(),
            r#"-password = "s3cr3t-Pa55w0rd""#,
            r#"+password = "xxxxxxxxxxxx""#,
            r#"+password = "XXXXXXXX""#,
            r#"+password: "********""#,
            "+PASSWORD=changeme",
            r#"+api_key = "${OPENAI_API_KEY}""#,
            "+token: $GITHUB_TOKEN",
            r#"+secret = "<your-secret-here>""#,
            "+password: {{ vault_db_password }}",
            "+    token = self.session_token",
            "+    password = os.environ.get(\"DB_PASSWORD\")",
            "+max_tokens = 100000000",
            r#"+password_hash = "$2b$12$KIXQJ4z""#,
            r#"+if password == "hunter2hunter2":"#,
            r#"+secret = "short""#,
            "+let task_description = \"sk-is-not-a-key\";",
        ]
        .map(str::to_owned);
        let patch = one_file_patch("app/settings.py", "@@ -1,2 +1,15 @@", &lines);
        assert_eq!(secret_hits(&patch), Vec::new());
    }

    #[test]
    fn the_plus_plus_plus_header_is_not_an_added_line() {
        // A file whose path itself looks like a secret assignment.
        let patch = "diff --git a/token=abc123def456 b/token=abc123def456
new file mode 100644
index 0000000..e69de29
--- /dev/null
+++ b/token=abc123def456
@@ -0,0 +1 @@
+nothing to see
";
        assert_eq!(secret_hits(patch), Vec::new());
    }
}
