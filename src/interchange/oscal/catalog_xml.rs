//! OSCAL catalog import from XML (root element `catalog` in the OSCAL namespace), e.g. NIST's
//! CSF 2.0 catalog, which NIST publishes only as XML and which the built-in `nist-csf-2.0`
//! template is read from at start-up.
//!
//! The document is parsed by [`roxmltree`] into a read-only tree, then walked like the JSON
//! importer walks its value: elements and attributes are matched by local name (any namespace
//! prefix), every problem is located `line:column` (1-based, column in characters) at the
//! offending start tag or XML error.
//!
//! Limits (roxmltree 0.21.2, whose defaults are kept but for the node count): a document type
//! declaration (`<!DOCTYPE`) is refused (`allow_dtd: false`; OSCAL documents have none, and
//! this rules out entity-expansion attacks — with a DTD allowed, roxmltree would still cap
//! entity references at 10 levels deep and 255 per reference); at most [`MAX_XML_NODES`]
//! nodes (`nodes_limit`); at most 2^32 attributes and 2^16 distinct namespaces are read
//! (attributes are bounded in practice by the CLI's file-size limit). roxmltree has
//! **no** element-nesting limit (since 0.21.2 it parses nested elements iteratively, so deep
//! nesting does not exhaust its stack); this module's walk is recursive, so a document nested
//! deeper than [`MAX_XML_DEPTH`] is refused before it (NIST catalogs nest about a dozen
//! levels).
//!
//! Must not: read files or the store, resolve external references, or build templates (that
//! is [`super::template`]).

use std::collections::HashMap;

use roxmltree::{Document, Node};

use super::{InsertBudget, OscalCatalog, OscalControl, collapse_ws, param_text};
use crate::interchange::ImportError;

/// Most XML nodes (elements, text runs, comments, processing instructions) a catalog may
/// have: 2,000,000, roxmltree's `nodes_limit` (its default is unlimited). NIST's CSF 2.0
/// catalog has about 6,000; the bound keeps the parsed tree to a few hundred MB at most.
pub const MAX_XML_NODES: u32 = 2_000_000;

/// Deepest element nesting accepted (the root element is level 1), like `serde_json`'s
/// 128-level limit on the JSON importers; deeper documents are refused with the location of
/// the first element past the limit.
pub const MAX_XML_DEPTH: usize = 128;

/// Parse an OSCAL catalog in XML (root element `catalog` in the OSCAL namespace), e.g. NIST's
/// CSF 2.0 catalog, which NIST publishes as XML.
///
/// # Errors
///
/// Malformed XML, a root element other than `catalog`, elements nested deeper than
/// [`MAX_XML_DEPTH`], controls without an `id` or `title`, or statements whose parameter
/// inserts go past [`super::MAX_INSERT_EXPANSION_BYTES`]; each located `line:column`
/// (1-based) of the offending start tag or XML error.
pub fn catalog_from_xml(text: &str) -> Result<OscalCatalog, Vec<ImportError>> {
    let doc = parse(text).map_err(|e| vec![e])?;
    let root = doc.root_element();
    if name(root) != "catalog" {
        return Err(vec![ImportError::new(
            at(root),
            format!("not an OSCAL catalog: root element is `{}`", name(root)),
        )]);
    }
    if let Some(deep) = first_too_deep(root) {
        return Err(vec![ImportError::new(
            at(deep),
            format!("elements nested deeper than {MAX_XML_DEPTH} levels"),
        )]);
    }
    let meta = elements(root, "metadata").next();
    let meta_text = |k: &str| meta.map(|m| child_text(m, k)).unwrap_or_default();
    let mut out = OscalCatalog {
        uuid: attr(root, "uuid").unwrap_or_default().to_owned(),
        title: meta_text("title"),
        version: meta_text("version"),
        oscal_version: meta_text("oscal-version"),
        controls: Vec::new(),
    };
    let mut params = HashMap::new();
    collect_params(root, &mut params);
    let mut errors = Vec::new();
    let mut cx = Walk {
        params: &params,
        budget: InsertBudget::default(),
        out: &mut out.controls,
        errors: &mut errors,
    };
    walk(root, "", None, &mut cx);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Parse with roxmltree's default options but at most [`MAX_XML_NODES`] nodes; a parse error
/// becomes one located [`ImportError`]: `empty XML document` at `1:1` when there is no
/// element at all, `malformed XML: unclosed element` (or roxmltree's message for a truncated
/// tag) at `end of document`, the `<!DOCTYPE` for a refused document type declaration, the
/// node limit at `document`, else `malformed XML: <roxmltree's message>` at roxmltree's
/// `line:column`.
fn parse(text: &str) -> Result<Document<'_>, ImportError> {
    let options = roxmltree::ParsingOptions {
        nodes_limit: MAX_XML_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::NodesLimitReached => ImportError::new(
            "document",
            format!("the document has more than {MAX_XML_NODES} XML nodes"),
        ),
        roxmltree::Error::NoRootNode => ImportError::new("1:1", "empty XML document"),
        roxmltree::Error::UnclosedRootNode => {
            ImportError::new("end of document", "malformed XML: unclosed element")
        }
        roxmltree::Error::UnexpectedEndOfStream => {
            ImportError::new("end of document", format!("malformed XML: {e}"))
        }
        roxmltree::Error::DtdDetected => ImportError::new(
            line_column(text, text.find("<!DOCTYPE").unwrap_or_default()),
            "malformed XML: a document type declaration (`<!DOCTYPE`) is not accepted",
        ),
        e => {
            let pos = e.pos();
            ImportError::new(
                format!("{}:{}", pos.row, pos.col),
                format!("malformed XML: {e}"),
            )
        }
    })
}

/// `line:column` (1-based, column in characters) of a node's start.
fn at(node: Node<'_, '_>) -> String {
    let pos = node.document().text_pos_at(node.range().start);
    format!("{}:{}", pos.row, pos.col)
}

/// `line:column` (1-based, column in characters) of a byte offset, for an error roxmltree
/// reports without a position.
fn line_column(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{column}")
}

/// The first element, in document order, nested deeper than [`MAX_XML_DEPTH`] (iterative, so
/// it is safe on any depth the parser accepted).
fn first_too_deep<'a, 'i>(root: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    let mut stack = vec![(root, 1)];
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_XML_DEPTH {
            return Some(node);
        }
        stack.extend(
            node.children()
                .rev()
                .filter(Node::is_element)
                .map(|c| (c, depth + 1)),
        );
    }
    None
}

/// An element's local name (without namespace prefix).
fn name<'a>(node: Node<'a, '_>) -> &'a str {
    node.tag_name().name()
}

/// The value of the first attribute with this local name (any namespace).
fn attr<'a>(node: Node<'a, '_>, local: &str) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.name() == local)
        .map(|a| a.value())
}

/// The child elements with this local name, in document order.
fn elements<'a, 'i>(node: Node<'a, 'i>, local: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children()
        .filter(move |c| c.is_element() && name(*c) == local)
}

/// The text of the first child element named `local` (see [`text_into`], no parameters),
/// whitespace collapsed; empty when there is none.
fn child_text(node: Node<'_, '_>, local: &str) -> String {
    elements(node, local)
        .next()
        .map(|e| {
            let mut s = String::new();
            text_into(e, &mut s, &HashMap::new(), &mut InsertBudget::default());
            collapse_ws(&s)
        })
        .unwrap_or_default()
}

/// All text below `node`, `insert` elements replaced by their parameter's text (or
/// `[Assignment]`, the inserted bytes spent from `budget`), child `prop`, `link` and `title`
/// elements skipped, a `part`'s label prop written before its text, every child element
/// surrounded by spaces. Stops adding once the budget is exhausted (the caller checks it).
fn text_into(
    node: Node<'_, '_>,
    out: &mut String,
    params: &HashMap<String, String>,
    budget: &mut InsertBudget,
) {
    for n in node.children() {
        if budget.exhausted() {
            return;
        }
        if n.is_text() {
            out.push_str(n.text().unwrap_or_default());
            continue;
        }
        if !n.is_element() {
            continue;
        }
        match name(n) {
            "prop" | "link" | "title" => {}
            "insert" => {
                let id = attr(n, "id-ref").unwrap_or_default();
                let text = params.get(id).map(String::as_str).unwrap_or("[Assignment]");
                if !budget.spend(text.len()) {
                    return;
                }
                out.push(' ');
                out.push_str(text);
                out.push(' ');
            }
            "part" => {
                out.push(' ');
                if let Some(l) = label(n) {
                    out.push_str(&l);
                    out.push(' ');
                }
                text_into(n, out, params, budget);
                out.push(' ');
            }
            _ => {
                out.push(' ');
                text_into(n, out, params, budget);
                out.push(' ');
            }
        }
    }
}

/// The `label` prop's value: the first without a `class`, else the first.
fn label(node: Node<'_, '_>) -> Option<String> {
    let labels: Vec<Node<'_, '_>> = elements(node, "prop")
        .filter(|p| attr(*p, "name") == Some("label"))
        .collect();
    labels
        .iter()
        .find(|p| attr(**p, "class").is_none())
        .or_else(|| labels.first())
        .and_then(|p| attr(*p, "value"))
        .map(str::to_owned)
}

/// Every `param` under `node` (outside `metadata` and `back-matter`), id → display text.
fn collect_params(node: Node<'_, '_>, params: &mut HashMap<String, String>) {
    for e in node.children().filter(Node::is_element) {
        if name(e) == "param" {
            if let Some(id) = attr(e, "id") {
                let label = child_text(e, "label");
                let choices: Vec<String> = elements(e, "select")
                    .flat_map(|s| elements(s, "choice"))
                    .map(|c| {
                        let mut s = String::new();
                        text_into(c, &mut s, &HashMap::new(), &mut InsertBudget::default());
                        collapse_ws(&s)
                    })
                    .collect();
                let refs: Vec<&str> = choices.iter().map(String::as_str).collect();
                params.insert(id.to_owned(), param_text(&label, &refs));
            }
        } else if name(e) != "metadata" && name(e) != "back-matter" {
            collect_params(e, params);
        }
    }
}

/// What [`walk`] carries along: the parameters, the insert budget and what it collects.
struct Walk<'a> {
    params: &'a HashMap<String, String>,
    budget: InsertBudget,
    out: &'a mut Vec<OscalControl>,
    errors: &'a mut Vec<ImportError>,
}

/// Flatten the `group` and `control` elements under `node` into `cx.out`, in document order;
/// stops once the insert budget is exhausted (the error is located at that control).
fn walk(node: Node<'_, '_>, family: &str, parent: Option<&str>, cx: &mut Walk<'_>) {
    for e in node.children().filter(Node::is_element) {
        if cx.budget.exhausted() {
            return;
        }
        match name(e) {
            "group" => {
                let title = child_text(e, "title");
                let fam = if family.is_empty() {
                    title.as_str()
                } else {
                    family
                };
                walk(e, fam, parent, cx);
            }
            "control" => {
                let id = attr(e, "id").unwrap_or_default().to_owned();
                let title = child_text(e, "title");
                if id.is_empty() {
                    cx.errors
                        .push(ImportError::new(at(e), "control without an id"));
                }
                if title.is_empty() {
                    cx.errors.push(ImportError::new(
                        at(e),
                        format!("control `{id}` has no title"),
                    ));
                }
                let mut statement = String::new();
                for part in elements(e, "part").filter(|p| attr(*p, "name") == Some("statement")) {
                    text_into(part, &mut statement, cx.params, &mut cx.budget);
                    statement.push(' ');
                }
                if cx.budget.exhausted() {
                    cx.errors.push(InsertBudget::error(at(e)));
                    return;
                }
                let withdrawn = elements(e, "prop").any(|p| {
                    attr(p, "name") == Some("status") && attr(p, "value") == Some("withdrawn")
                });
                cx.out.push(OscalControl {
                    id: id.clone(),
                    label: label(e),
                    class: attr(e, "class").map(str::to_owned),
                    title,
                    family: family.to_owned(),
                    parent: parent.map(str::to_owned),
                    statement: collapse_ws(&statement),
                    withdrawn,
                });
                walk(e, family, Some(&id), cx);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_names_entities_cdata_and_inserts_flatten_like_the_json_importer() {
        let xml = r#"<?xml version="1.0"?>
<!-- NIST publishes with a default namespace; a prefix is the same document -->
<o:catalog xmlns:o="http://csrc.nist.gov/ns/oscal/1.0" uuid="u1">
  <o:metadata><o:title>T &amp; <o:em>x</o:em></o:title><o:version>1</o:version>
    <o:param id="meta"><o:label>ignored</o:label></o:param></o:metadata>
  <o:group><o:title>Family</o:title>
    <o:control id="c-1" class="k"><o:title>C1</o:title>
      <o:param id="p1"><o:label>org-defined</o:label></o:param>
      <o:param id="p2"><o:select><o:choice>a &lt; b</o:choice><o:choice>c</o:choice></o:select></o:param>
      <o:prop name="label" class="other" value="X"/><o:prop name="label" value="C-1"/>
      <o:part name="statement"><o:p>Do <o:insert type="param" id-ref="p1"/> and
        <o:insert type="param" id-ref="p2"/> &#65;&#x42; <![CDATA[<raw> &]]><?pi?></o:p>
        <o:part name="item"><o:prop name="label" value="a."/><o:title>skip</o:title>first</o:part>
      </o:part>
      <o:part name="guidance"><o:p>not in the statement</o:p></o:part>
      <o:control id="c-1.1"><o:title>c-1.1</o:title><o:prop name="status" value="withdrawn"/></o:control>
    </o:control>
  </o:group>
  <o:back-matter><o:param id="p1"><o:label>ignored</o:label></o:param></o:back-matter>
</o:catalog>"#;
        let cat = catalog_from_xml(xml).expect("parses");
        assert_eq!((cat.uuid.as_str(), cat.title.as_str()), ("u1", "T & x"));
        assert_eq!(cat.controls.len(), 2);
        let c1 = &cat.controls[0];
        assert_eq!(c1.label.as_deref(), Some("C-1"));
        assert_eq!(c1.class.as_deref(), Some("k"));
        assert_eq!(c1.family, "Family");
        assert_eq!(
            c1.statement,
            "Do [Assignment: org-defined] and [Selection: a < b; c] AB <raw> & a. first"
        );
        let c11 = &cat.controls[1];
        assert_eq!(c11.parent.as_deref(), Some("c-1"));
        assert!(c11.withdrawn);
        // CRLF line ends read the same.
        assert_eq!(catalog_from_xml(&xml.replace('\n', "\r\n")), Ok(cat));
    }

    #[test]
    fn nesting_is_limited_and_located() {
        let nested = |levels: usize| {
            format!(
                "<catalog>\n{}{}</catalog>",
                "<x>".repeat(levels - 1),
                "</x>".repeat(levels - 1)
            )
        };
        assert!(catalog_from_xml(&nested(MAX_XML_DEPTH)).is_ok());
        let e = catalog_from_xml(&nested(MAX_XML_DEPTH + 1)).unwrap_err();
        assert_eq!(
            e[0].to_string(),
            format!(
                "2:{}: elements nested deeper than {MAX_XML_DEPTH} levels",
                3 * (MAX_XML_DEPTH - 1) + 1
            )
        );
        // Far deeper than any stack would take recursively: refused, not a crash.
        let e = catalog_from_xml(&nested(200_000)).unwrap_err();
        assert!(e[0].message.contains("nested deeper"), "{e:?}");
    }

    #[test]
    fn malformed_documents_are_refused_with_a_location() {
        let located = |xml: &str| {
            catalog_from_xml(xml)
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(located(""), ["1:1: empty XML document"]);
        assert_eq!(
            located("<catalog>\n<group>"),
            ["end of document: malformed XML: unclosed element"]
        );
        assert_eq!(
            located("<?xml version=\"1.0\"?>\n<!DOCTYPE catalog>\n<catalog/>"),
            ["2:1: malformed XML: a document type declaration (`<!DOCTYPE`) is not accepted"]
        );
        let e = located("<catalog>\n  <title>A&nbsp;B</title></catalog>");
        assert!(e[0].starts_with("2:11: malformed XML: "), "{e:?}");
        let e = located("<catalog>\n <control id='a'></group></catalog>");
        assert!(e[0].starts_with("2:18: malformed XML: "), "{e:?}");
    }

    /// Issue 8 row 7 (XML): an 860 KB catalog inserting a long parameter thousands of times
    /// aborted allocating 6.5 GB. Inserted text now spends one `MAX_INSERT_EXPANSION_BYTES`
    /// budget; past it the import fails at the control's start tag.
    #[test]
    fn repeated_inserts_exhaust_the_budget_with_a_location() {
        use crate::interchange::oscal::MAX_INSERT_EXPANSION_BYTES;
        let xml = format!(
            "<catalog>\n<control id=\"c-1\"><title>T</title>\n\
             <param id=\"p\"><label>{}</label></param>\n\
             <control id=\"c-2\"><title>U</title>\n\
             <part name=\"statement\"><p>{}</p></part></control></control></catalog>",
            "x".repeat(400_000),
            "<insert type=\"param\" id-ref=\"p\"/>".repeat(12_000)
        );
        assert!(xml.len() < 900_000, "{}", xml.len());
        let e = catalog_from_xml(&xml).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            e[0].to_string(),
            format!(
                "4:1: parameter inserts expand the statements past {MAX_INSERT_EXPANSION_BYTES} \
                 bytes (parameters inserted too often, or into each other)"
            )
        );
    }
}
