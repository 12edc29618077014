//! The emoji label tables (`emoji64-labels.tsv`, `emoji128-labels.tsv`): one row per image with
//! its Unicode short name, category, subcategory, skin tone and, for the 60 person faces of four
//! ages, age group and gender.
//!
//! The class label of an emoji is its Unicode category, in Unicode's order
//! ([`EMOJI_CATEGORIES`]). Unicode's tenth category, `Component` (five hair-style and skin-tone
//! swatches, only in the 64-pixel set), is counted with `People & Body`, whose parts they are,
//! so that both sets share the same nine classes.

use crate::error::{DataError, Result};
use std::path::Path;

/// The nine emoji classes, in Unicode's category order: label `k` is `EMOJI_CATEGORIES[k]`.
pub const EMOJI_CATEGORIES: [&str; 9] = [
    "Smileys & Emotion",
    "People & Body",
    "Animals & Nature",
    "Food & Drink",
    "Travel & Places",
    "Activities",
    "Objects",
    "Symbols",
    "Flags",
];

/// The age groups of the face-ageing emoji, youngest first: `age_group` `k` is `AGE_GROUPS[k]`.
pub const AGE_GROUPS: [&str; 4] = ["baby", "child", "adult", "older"];

/// One row of an emoji label table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmojiInfo {
    /// Unicode's short name (`grinning`, `older_adult`).
    pub short_name: String,
    /// The class: an index into [`EMOJI_CATEGORIES`].
    pub category: usize,
    /// Unicode's subcategory (`face-smiling`).
    pub subcategory: String,
    /// `none`, `light`, `medium-light`, `medium`, `medium-dark` or `dark`.
    pub skin_tone: String,
    /// For the faces of the ageing set: an index into [`AGE_GROUPS`].
    pub age_group: Option<usize>,
    /// For the faces of the ageing set: `neutral`, `male` or `female`.
    pub gender: Option<String>,
}

/// Reads an emoji label table: a tab-separated file whose header names at least the columns
/// `index`, `short_name`, `category`, `subcategory`, `skin_tone`, `age_group` and `gender`, and
/// whose rows are numbered 0, 1, 2, ... in the `index` column (the image order).
///
/// # Errors
/// If the file cannot be read, a column is missing, a row is out of order or has too few
/// fields, or a category or age group is unknown; the message names the file and the line.
pub fn read_emoji_labels(path: &Path) -> Result<Vec<EmojiInfo>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    parse_emoji_labels(&text, path)
}

/// Parses the text of an emoji label table (see [`read_emoji_labels`]); `path` names it in
/// errors.
///
/// # Errors
/// As [`read_emoji_labels`], but for reading.
pub fn parse_emoji_labels(text: &str, path: &Path) -> Result<Vec<EmojiInfo>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| DataError::format(path, format!("the header has no `{name}` column")))
    };
    let [
        index,
        short_name,
        category,
        subcategory,
        skin_tone,
        age_group,
        gender,
    ] = [
        "index",
        "short_name",
        "category",
        "subcategory",
        "skin_tone",
        "age_group",
        "gender",
    ]
    .map(column);
    let (index, short_name, category) = (index?, short_name?, category?);
    let (subcategory, skin_tone, age_group, gender) =
        (subcategory?, skin_tone?, age_group?, gender?);
    let mut rows = Vec::new();
    for (row, line) in lines.enumerate().filter(|(_, l)| !l.is_empty()) {
        let at = |m: String| DataError::format(path, format!("line {}: {m}", row + 2));
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < header.len() {
            return Err(at(format!(
                "{} fields, the header has {}",
                fields.len(),
                header.len()
            )));
        }
        if fields[index].parse::<usize>().ok() != Some(rows.len()) {
            return Err(at(format!(
                "index `{}` where {} was expected (rows follow the image order)",
                fields[index],
                rows.len()
            )));
        }
        let category = match fields[category] {
            "Component" => 1,
            name => EMOJI_CATEGORIES
                .iter()
                .position(|c| *c == name)
                .ok_or_else(|| at(format!("unknown category `{name}`")))?,
        };
        let age_group = match fields[age_group] {
            "" => None,
            name => Some(
                AGE_GROUPS
                    .iter()
                    .position(|a| *a == name)
                    .ok_or_else(|| at(format!("unknown age group `{name}`")))?,
            ),
        };
        rows.push(EmojiInfo {
            short_name: fields[short_name].to_string(),
            category,
            subcategory: fields[subcategory].to_string(),
            skin_tone: fields[skin_tone].to_string(),
            age_group,
            gender: Some(fields[gender])
                .filter(|g| !g.is_empty())
                .map(String::from),
        });
    }
    Ok(rows)
}

/// The same person at another age: the index (into `rows`) of the face with `rows[face]`'s
/// skin tone and gender at age group `age`, or, where that age has no face of that gender
/// (the baby is `neutral`), the `neutral` one. So a boy's adult self is the man of his skin
/// tone, a man's baby self the baby of his tone, and the baby's adult self the (neutral)
/// adult. `None` when `rows[face]` is not an ageing face or the table has no match.
///
/// ```
/// use gantry_datasets::{EmojiInfo, same_person_at};
/// let face = |name: &str, tone: &str, age: usize, gender: &str| EmojiInfo {
///     short_name: name.into(),
///     category: 1,
///     subcategory: "person".into(),
///     skin_tone: tone.into(),
///     age_group: Some(age),
///     gender: Some(gender.into()),
/// };
/// let rows = [
///     face("boy", "dark", 1, "male"),
///     face("man", "light", 2, "male"),
///     face("man", "dark", 2, "male"),
///     face("baby", "dark", 0, "neutral"),
/// ];
/// assert_eq!(same_person_at(&rows, 0, 2), Some(2));
/// assert_eq!(same_person_at(&rows, 2, 0), Some(3));
/// assert_eq!(same_person_at(&rows, 0, 3), None);
/// ```
pub fn same_person_at(rows: &[EmojiInfo], face: usize, age: usize) -> Option<usize> {
    let me = rows.get(face)?;
    me.age_group?;
    let at = |gender: &str| {
        rows.iter().position(|r| {
            r.age_group == Some(age)
                && r.skin_tone == me.skin_tone
                && r.gender.as_deref() == Some(gender)
        })
    };
    at(me.gender.as_deref()?).or_else(|| at("neutral"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "index\tfile\tshort_name\tcategory\tsubcategory\tskin_tone\tage_group\tgender\n";

    #[test]
    fn rows_parse_with_component_counted_as_people() {
        let text = format!(
            "{HEADER}0\ta.png\tgrinning\tSmileys & Emotion\tface-smiling\tnone\t\t\n\
             1\tb.png\tred_hair\tComponent\thair-style\tnone\t\t\n\
             2\tc.png\told_man\tPeople & Body\tperson\tdark\tolder\tmale\n\
             3\td.png\tflag-fr\tFlags\tcountry-flag\tnone\t\t\n"
        );
        let rows = parse_emoji_labels(&text, Path::new("l.tsv")).unwrap();
        let cats: Vec<usize> = rows.iter().map(|r| r.category).collect();
        assert_eq!(cats, [0, 1, 1, 8]);
        assert_eq!(rows[2].age_group, Some(3));
        assert_eq!(rows[2].gender.as_deref(), Some("male"));
        assert_eq!(rows[2].skin_tone, "dark");
        assert_eq!((rows[0].age_group, rows[0].gender.as_ref()), (None, None));
    }

    #[test]
    fn bad_tables_name_the_file_and_line() {
        let cases = [
            ("index\tcategory\n0\tFlags\n", "no `short_name` column"),
            (
                &format!("{HEADER}1\ta\tx\tFlags\ts\tnone\t\t\n") as &str,
                "line 2: index `1` where 0 was expected",
            ),
            (
                &format!("{HEADER}0\ta\tx\tPlants\ts\tnone\t\t\n"),
                "line 2: unknown category `Plants`",
            ),
            (
                &format!("{HEADER}0\ta\tx\tFlags\ts\tnone\tteen\t\n"),
                "unknown age group `teen`",
            ),
            (&format!("{HEADER}0\ta\tx\n"), "line 2: 3 fields"),
        ];
        for (text, want) in cases {
            let e = parse_emoji_labels(text, Path::new("dir/l.tsv"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("dir/l.tsv") && e.contains(want), "{e}");
        }
    }
}
