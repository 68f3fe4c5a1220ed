//! The rights matrix: for each function, none / view / update (update includes view), plus the
//! separate right to see My Numbers. Roles are presets over the matrix; a user's own matrix may
//! then be edited by the security officer (never by the user themself).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    Capture,
    Drafts,
    Review,
    Cases,
    Search,
    Export,
    InputData,
    Retention,
    Boxes,
    Users,
    Audit,
}

impl Function {
    pub const ALL: [Function; 11] = [
        Function::Capture,
        Function::Drafts,
        Function::Review,
        Function::Cases,
        Function::Search,
        Function::Export,
        Function::InputData,
        Function::Retention,
        Function::Boxes,
        Function::Users,
        Function::Audit,
    ];

    pub fn label_ja(self) -> &'static str {
        match self {
            Function::Capture => "収受・スキャン",
            Function::Drafts => "OCR下書き",
            Function::Review => "審査",
            Function::Cases => "受給者台帳",
            Function::Search => "検索",
            Function::Export => "書き出し",
            Function::InputData => "入力データ作成",
            Function::Retention => "保存期間・廃棄",
            Function::Boxes => "文書箱",
            Function::Users => "利用者管理",
            Function::Audit => "監査ログ",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Function::Capture => "capture",
            Function::Drafts => "drafts",
            Function::Review => "review",
            Function::Cases => "cases",
            Function::Search => "search",
            Function::Export => "export",
            Function::InputData => "input_data",
            Function::Retention => "retention",
            Function::Boxes => "boxes",
            Function::Users => "users",
            Function::Audit => "audit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    None,
    View,
    Update,
}

impl Level {
    pub fn label_ja(self) -> &'static str {
        match self {
            Level::None => "なし",
            Level::View => "参照",
            Level::Update => "更新・参照",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "none" => Some(Level::None),
            "view" => Some(Level::View),
            "update" => Some(Level::Update),
            _ => None,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::View => "view",
            Level::Update => "update",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Rights {
    levels: BTreeMap<Function, Level>,
    /// May see My Numbers unmasked (個人番号閲覧可能フラグ).
    pub my_number: bool,
}

impl Rights {
    pub fn level(&self, f: Function) -> Level {
        self.levels.get(&f).copied().unwrap_or_default()
    }

    pub fn allows(&self, f: Function, needed: Level) -> bool {
        self.level(f) >= needed
    }

    pub fn set(&mut self, f: Function, level: Level) {
        self.levels.insert(f, level);
    }

    fn from(pairs: &[(Function, Level)], my_number: bool) -> Rights {
        Rights { levels: pairs.iter().copied().collect(), my_number }
    }

    /// One line for listings and CSV: `search=view capture=update … my_number=yes`.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = Function::ALL
            .iter()
            .filter(|f| self.level(**f) != Level::None)
            .map(|f| format!("{}={}", f.key(), self.level(*f).key()))
            .collect();
        parts.push(format!("my_number={}", if self.my_number { "yes" } else { "no" }));
        parts.join(" ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Mailroom,
    Reviewer,
    RecordsOfficer,
    SecurityOfficer,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] =
        [Role::Mailroom, Role::Reviewer, Role::RecordsOfficer, Role::SecurityOfficer, Role::Auditor];

    pub fn label_ja(self) -> &'static str {
        match self {
            Role::Mailroom => "収受担当",
            Role::Reviewer => "審査担当",
            Role::RecordsOfficer => "文書管理担当",
            Role::SecurityOfficer => "情報セキュリティ責任者",
            Role::Auditor => "監査担当（参照のみ）",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Role::Mailroom => "mailroom",
            Role::Reviewer => "reviewer",
            Role::RecordsOfficer => "records_officer",
            Role::SecurityOfficer => "security_officer",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.key() == s)
    }

    /// The preset matrix of a role.
    pub fn preset(self) -> Rights {
        use Function::*;
        use Level::*;
        match self {
            Role::Mailroom => Rights::from(&[(Capture, Update), (Drafts, View), (Search, View), (Boxes, View)], false),
            Role::Reviewer => Rights::from(
                &[
                    (Capture, View),
                    (Drafts, Update),
                    (Review, Update),
                    (Cases, Update),
                    (Search, View),
                    (Export, Update),
                    (InputData, Update),
                ],
                true,
            ),
            Role::RecordsOfficer => Rights::from(
                &[(Cases, View), (Search, View), (Retention, Update), (Boxes, Update), (Export, Update), (Audit, View)],
                false,
            ),
            Role::SecurityOfficer => {
                Rights::from(&[(Users, Update), (Audit, Update), (Search, View), (Cases, View)], false)
            }
            Role::Auditor => Rights::from(
                &[
                    (Capture, View),
                    (Drafts, View),
                    (Review, View),
                    (Cases, View),
                    (Search, View),
                    (Retention, View),
                    (Boxes, View),
                    (InputData, View),
                    (Audit, View),
                ],
                false,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_implies_view_and_presets_differ() {
        let r = Role::Reviewer.preset();
        assert!(r.allows(Function::Review, Level::View));
        assert!(r.allows(Function::Review, Level::Update));
        assert!(!r.allows(Function::Users, Level::View));
        assert!(r.my_number);
        let a = Role::Auditor.preset();
        assert!(Function::ALL.iter().all(|f| !a.allows(*f, Level::Update)), "auditor is read-only");
        assert!(!a.my_number);
        assert!(Role::SecurityOfficer.preset().allows(Function::Users, Level::Update));
        assert_eq!(Role::parse("records_officer"), Some(Role::RecordsOfficer));
        assert!(Role::Mailroom.preset().summary().contains("capture=update"));
    }
}
