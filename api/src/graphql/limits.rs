//! Limits on a document's size before it runs: aliases (one request must not fan out into
//! hundreds of resolver calls) and field selections, fragments expanded; then its cost
//! (each list field multiplies what it selects by its page size, see `connection::cost`).

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, ServerError, ServerResult, ValidationResult, Variables};
use std::sync::Arc;

/// Aliased fields a document may hold (fragments expanded).
pub const MAX_ALIASES: usize = 50;
/// Field selections a document may hold (fragments expanded).
pub const MAX_FIELDS: usize = 2_000;
/// How deep fragment spreads are followed.
const MAX_SPREAD_DEPTH: usize = 32;

/// The extension; see the module doc.
pub struct Limits;

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension)
    }
}

struct LimitsExtension;

#[derive(Default)]
struct Count {
    fields: usize,
    aliases: usize,
}

impl Count {
    fn over(&self) -> bool {
        self.fields > MAX_FIELDS || self.aliases > MAX_ALIASES
    }
}

fn walk(doc: &ExecutableDocument, set: &SelectionSet, depth: usize, n: &mut Count) {
    for item in &set.items {
        if n.over() || depth > MAX_SPREAD_DEPTH {
            return;
        }
        match &item.node {
            Selection::Field(f) => {
                n.fields += 1;
                n.aliases += usize::from(f.node.alias.is_some());
                walk(doc, &f.node.selection_set.node, depth, n);
            }
            Selection::InlineFragment(f) => walk(doc, &f.node.selection_set.node, depth, n),
            Selection::FragmentSpread(s) => {
                if let Some(def) = doc.fragments.get(&s.node.fragment_name.node) {
                    walk(doc, &def.node.selection_set.node, depth + 1, n);
                }
            }
        }
    }
}

/// Fields and aliases of every operation, fragments expanded (stops once over a limit).
fn count(doc: &ExecutableDocument) -> Count {
    let mut n = Count::default();
    for (_, op) in doc.operations.iter() {
        walk(doc, &op.node.selection_set.node, 0, &mut n);
    }
    n
}

fn too_big(message: String) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", crate::error::code::BAD_USER_INPUT);
    e.extensions = Some(ext);
    e
}

#[async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let n = count(&doc);
        if n.aliases > MAX_ALIASES {
            return Err(too_big(format!("the document has more than {MAX_ALIASES} aliased fields")));
        }
        if n.fields > MAX_FIELDS {
            return Err(too_big(format!("the document selects more than {MAX_FIELDS} fields")));
        }
        Ok(doc)
    }

    /// The cost is computed by validation (every field's `complexity`); refused here rather
    /// than by the schema's own limit so the answer says the cost, the limit and a code.
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if result.complexity > super::MAX_COMPLEXITY {
            return Err(vec![too_big(format!(
                "the query costs {}, more than the limit of {} (a list costs its selection times its page \
                 size, so nested lists multiply: ask for smaller pages or fewer nested lists)",
                result.complexity,
                super::MAX_COMPLEXITY
            ))]);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(q).expect("parses")
    }

    #[test]
    fn aliases_and_fields_are_counted_through_fragments() {
        let n = count(&parse("{ a: me { id } b: me { id } ...F } fragment F on QueryRoot { c: me { id } }"));
        assert_eq!((n.fields, n.aliases), (6, 3));
        let many: String = (0..60).map(|i| format!("a{i}: me {{ id }} ")).collect();
        assert!(count(&parse(&format!("{{ {many} }}"))).over());
        // One fragment with 10 aliases spread 10 times is 100 aliases.
        let spreads: String = (0..10).map(|i| format!("x{i}: me {{ ...F }} ")).collect();
        let ten: String = (0..10).map(|i| format!("f{i}: id ")).collect();
        let doc = parse(&format!("{{ {spreads} }} fragment F on User {{ {ten} }}"));
        assert!(count(&doc).aliases > MAX_ALIASES);
    }
}
