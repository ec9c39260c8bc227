//! XEP-0004 data forms: rendering a layout as Prosody's util.dataforms renders it, and
//! reading a submitted form against that layout with the same value rules.

use crate::xml::{el, ElementExt, NS_DATA};
use minidom::Element;

const NS_VALIDATE: &str = "http://jabber.org/protocol/xdata-validate";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Boolean,
    Fixed,
    Hidden,
    JidSingle,
    ListMulti,
    ListSingle,
    TextMulti,
    TextPrivate,
    TextSingle,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Boolean => "boolean",
            FieldType::Fixed => "fixed",
            FieldType::Hidden => "hidden",
            FieldType::JidSingle => "jid-single",
            FieldType::ListMulti => "list-multi",
            FieldType::ListSingle => "list-single",
            FieldType::TextMulti => "text-multi",
            FieldType::TextPrivate => "text-private",
            FieldType::TextSingle => "text-single",
        }
    }
}

/// A field's current value. `None` (no `<value/>`) differs from an empty one.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Text(String),
    Int(i64),
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldOption {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub var: Option<&'static str>,
    pub kind: FieldType,
    pub label: Option<&'static str>,
    pub desc: Option<&'static str>,
    pub datatype: Option<&'static str>,
    pub required: bool,
    pub options: Vec<FieldOption>,
    pub value: Option<Value>,
}

impl Field {
    pub fn new(var: &'static str, kind: FieldType) -> Self {
        Field {
            var: Some(var),
            kind,
            label: None,
            desc: None,
            datatype: None,
            required: false,
            options: Vec::new(),
            value: None,
        }
    }
    pub fn fixed(text: &str) -> Self {
        Field { var: None, ..Field::new("", FieldType::Fixed) }.value(Value::Text(text.to_owned()))
    }
    pub fn hidden(var: &'static str, value: &str) -> Self {
        Field::new(var, FieldType::Hidden).value(Value::Text(value.to_owned()))
    }
    pub fn label(mut self, label: &'static str) -> Self {
        self.label = Some(label);
        self
    }
    pub fn desc(mut self, desc: &'static str) -> Self {
        self.desc = Some(desc);
        self
    }
    pub fn datatype(mut self, datatype: &'static str) -> Self {
        self.datatype = Some(datatype);
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn value(mut self, value: Value) -> Self {
        self.value = Some(value);
        self
    }
    pub fn maybe_value(mut self, value: Option<Value>) -> Self {
        self.value = value;
        self
    }
    pub fn option(mut self, value: &str, label: &str) -> Self {
        self.options.push(FieldOption { label: label.to_owned(), value: value.to_owned() });
        self
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Form {
    pub title: Option<String>,
    pub instructions: Option<String>,
    pub fields: Vec<Field>,
}

impl Form {
    /// Renders the form as `type='form'` (or `'result'`).
    pub fn render(&self, form_type: &str) -> Element {
        let mut x = el("x", NS_DATA).with("type", form_type);
        if let Some(title) = &self.title {
            x.append_child(el("title", NS_DATA).text(title.clone()));
        }
        if let Some(instructions) = &self.instructions {
            x.append_child(el("instructions", NS_DATA).text(instructions.clone()));
        }
        let is_form = form_type == "form";
        for field in &self.fields {
            let mut f = el("field", NS_DATA)
                .with("type", field.kind.as_str())
                .with_opt("var", field.var)
                .with_opt("label", field.label);
            if let Some(desc) = field.desc {
                f.append_child(el("desc", NS_DATA).text(desc));
            }
            if is_form {
                if let Some(datatype) = field.datatype {
                    f.append_child(el("validate", NS_VALIDATE).with("datatype", datatype));
                }
                for option in &field.options {
                    f.append_child(
                        el("option", NS_DATA)
                            .with("label", option.label.clone())
                            .child(el("value", NS_DATA).text(option.value.clone())),
                    );
                }
            }
            let value_el = |text: String| el("value", NS_DATA).text(text);
            match &field.value {
                None => {}
                Some(Value::Bool(b)) => {
                    f.append_child(value_el(if *b { "1" } else { "0" }.into()));
                }
                Some(Value::Int(n)) => {
                    f.append_child(value_el(n.to_string()));
                }
                Some(Value::Text(t)) => {
                    f.append_child(value_el(t.clone()));
                }
                Some(Value::List(values)) => {
                    for v in values {
                        f.append_child(value_el(v.clone()));
                    }
                }
            }
            if is_form && field.required {
                f.append_child(el("required", NS_DATA));
            }
            x.append_child(f);
        }
        x
    }
}

/// One submitted field, read with the rules of its type in the layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub var: &'static str,
    /// `None` when the value was missing, empty or invalid for the field's type: Prosody
    /// hands such fields on as nil, and the room options treat nil as "unset".
    pub value: Option<Value>,
}

/// The `FORM_TYPE` of a form, if it has one.
pub fn form_type(form: &Element) -> Option<String> {
    form.children()
        .find(|f| f.is("field", NS_DATA) && f.attr("var") == Some("FORM_TYPE"))
        .and_then(|f| f.get_child("value", NS_DATA))
        .map(Element::text)
}

/// Reads a submitted `<x type='submit'/>` against `layout`, in the layout's field order.
/// Fields not in the layout are ignored, as Prosody ignores them.
pub fn read_submitted(layout: &Form, form: &Element) -> Vec<Submitted> {
    let mut out = Vec::new();
    for field in &layout.fields {
        let Some(var) = field.var else { continue };
        let Some(tag) = form.children().find(|f| f.is("field", NS_DATA) && f.attr("var") == Some(var)) else {
            continue;
        };
        let first_text = || tag.get_child("value", NS_DATA).map(Element::text).filter(|t| !t.is_empty());
        let value = match field.kind {
            FieldType::Fixed => continue,
            FieldType::Hidden => tag.get_child("value", NS_DATA).map(|v| Value::Text(v.text())),
            FieldType::Boolean => first_text().and_then(|t| match t.as_str() {
                "1" | "true" => Some(Value::Bool(true)),
                "0" | "false" => Some(Value::Bool(false)),
                _ => None,
            }),
            FieldType::ListMulti => {
                let values: Vec<String> =
                    tag.children().filter(|v| v.is("value", NS_DATA)).map(Element::text).collect();
                (!values.is_empty()).then_some(Value::List(values))
            }
            FieldType::TextMulti => {
                let lines: Vec<String> =
                    tag.children().filter(|v| v.is("value", NS_DATA)).map(Element::text).collect();
                (!lines.is_empty()).then(|| Value::Text(lines.join("\n")))
            }
            FieldType::JidSingle => {
                first_text().and_then(|t| t.parse::<jid::Jid>().ok()).map(|j| Value::Text(j.to_string()))
            }
            FieldType::ListSingle | FieldType::TextPrivate | FieldType::TextSingle => {
                match (first_text(), field.datatype) {
                    (Some(t), Some("xs:integer")) => parse_integer(&t).map(Value::Int),
                    (t, _) => t.map(Value::Text),
                }
            }
        };
        out.push(Submitted { var, value });
    }
    out
}

/// An xs:integer as Lua's `tonumber` plus a whole-number check reads it.
fn parse_integer(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Some(n);
    }
    let f: f64 = t.parse().ok()?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted(fields: &[(&str, &[&str])]) -> Element {
        let mut x = el("x", NS_DATA).with("type", "submit");
        for (var, values) in fields {
            let mut f = el("field", NS_DATA).with("var", *var);
            for v in *values {
                f.append_child(el("value", NS_DATA).text(*v));
            }
            x.append_child(f);
        }
        x
    }

    fn layout() -> Form {
        Form {
            title: None,
            instructions: None,
            fields: vec![
                Field::hidden("FORM_TYPE", "urn:test"),
                Field::new("flag", FieldType::Boolean),
                Field::new("count", FieldType::TextSingle).datatype("xs:integer"),
                Field::new("roles", FieldType::ListMulti),
                Field::new("name", FieldType::TextSingle),
            ],
        }
    }

    #[test]
    fn values_are_read_with_prosody_rules() {
        let form = submitted(&[
            ("FORM_TYPE", &["urn:test"]),
            ("flag", &["true"]),
            ("count", &["12"]),
            ("roles", &["moderator", "participant"]),
            ("name", &[""]),
            ("unknown", &["x"]),
        ]);
        assert_eq!(form_type(&form).as_deref(), Some("urn:test"));
        let read = read_submitted(&layout(), &form);
        let get = |var: &str| read.iter().find(|s| s.var == var).map(|s| s.value.clone());
        assert_eq!(get("flag"), Some(Some(Value::Bool(true))));
        assert_eq!(get("count"), Some(Some(Value::Int(12))));
        assert_eq!(get("roles"), Some(Some(Value::List(vec!["moderator".into(), "participant".into()]))));
        assert_eq!(get("name"), Some(None), "empty text reads as unset");
        assert_eq!(get("unknown"), None);
    }

    #[test]
    fn wrong_types_read_as_unset() {
        let form = submitted(&[("flag", &["yes"]), ("count", &["1.5"]), ("roles", &[])]);
        let read = read_submitted(&layout(), &form);
        assert!(read.iter().all(|s| s.value.is_none()), "{read:?}");
    }

    #[test]
    fn render_matches_prosody_layout() {
        let form = Form {
            title: Some("T".into()),
            instructions: None,
            fields: vec![
                Field::new("b", FieldType::Boolean).label("B").value(Value::Bool(false)),
                Field::new("n", FieldType::TextSingle).datatype("xs:integer").value(Value::Int(20)),
            ],
        };
        let x = form.render("form");
        let fields: Vec<&Element> = x.children().filter(|c| c.name() == "field").collect();
        assert_eq!(fields[0].attr("label"), Some("B"));
        assert_eq!(fields[0].get_child("value", NS_DATA).unwrap().text(), "0");
        assert!(fields[1].get_child("validate", NS_VALIDATE).is_some());
        assert_eq!(x.get_child("title", NS_DATA).unwrap().text(), "T");
    }
}
