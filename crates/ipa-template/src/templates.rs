//! Templates and conditions of workflow definitions, with minijinja: compiling them when a version
//! is published (the [`TemplateChecker`] port of the workflow context, which also says whether a
//! template refers only to `input` and to the steps before its own), and rendering templates and
//! evaluating `when` conditions while a run executes.

use std::collections::BTreeMap;

use ipa_workflow::{EarlierSteps, TemplateCheck, TemplateChecker, TemplateKind};
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};

/// The longest template or condition accepted, in bytes. Compiling and analysing are linear in
/// the source, so bounding it bounds the work a definition can ask of a publish or of a worker.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// The work one render or evaluation may do, in minijinja's fuel (about one unit per instruction).
/// Bounding the source bounds compiling; this bounds running, which loops can make arbitrarily
/// long (`{% for i in range(100000) %}{% for j in range(100000) %}`). Generous for real templates.
pub const FUEL: u64 = 2_000_000;

/// The root every run's input is available under.
const INPUT: &str = "input";
/// The root the outputs of earlier steps are available under, as `steps.<name>`.
const STEPS: &str = "steps";

/// The template engine of workflow definitions: checks templates and conditions, renders
/// templates and evaluates conditions. Cheap to share: build one and keep it.
#[derive(Clone, Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// An engine with minijinja's built-in filters, tests and functions, where using a value that
    /// is not there is an error: a webhook sent to `https:///orders` or a prompt with a hole in
    /// it is worse than a failed step that says which value was missing.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        Self { env }
    }

    /// Renders the template `source` with `context` (usually `{"input": ..., "steps": {...}}`).
    pub fn render(&self, source: &str, context: &serde_json::Value) -> Result<String, RenderError> {
        let kind = TemplateKind::Template;
        bounded(kind, source).map_err(RenderError::new)?;
        let template = self
            .env
            .template_from_str(source)
            .map_err(|error| RenderError::new(compile_error(kind, &error)))?;
        template
            .render(context_value(context))
            .map_err(|error| RenderError::new(run_error(kind, &error)))
    }

    /// Evaluates the condition `expression` with `context` and says whether it holds, by
    /// minijinja's truthiness (`false`, `0`, `""`, `none`, empty lists and maps are false).
    pub fn evaluate(
        &self,
        expression: &str,
        context: &serde_json::Value,
    ) -> Result<bool, RenderError> {
        let kind = TemplateKind::Expression;
        bounded(kind, expression).map_err(RenderError::new)?;
        let compiled = self
            .env
            .compile_expression(expression)
            .map_err(|error| RenderError::new(compile_error(kind, &error)))?;
        let value = compiled
            .eval(context_value(context))
            .map_err(|error| RenderError::new(run_error(kind, &error)))?;
        // A condition that ends on a missing value (`steps.a.output.missing`) evaluates to
        // undefined without erring; strictness means it must not silently skip the step.
        if value.is_undefined() {
            return Err(RenderError::new(format!(
                "the {} could not be evaluated: its value is not defined",
                noun(kind)
            )));
        }
        Ok(value.is_true())
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl TemplateChecker for Templates {
    fn check(&self, template: &TemplateCheck<'_>) -> Result<(), String> {
        let kind = template.kind;
        let source = template.source.as_str();
        bounded(kind, source)?;
        // Every tag, expression and comment opens with `{`: text without one is plain text,
        // which always compiles and names nothing (most strings of a webhook body are).
        if kind == TemplateKind::Template && !source.contains('{') {
            return Ok(());
        }
        let variables = match kind {
            TemplateKind::Template => self
                .env
                .template_from_str(source)
                .map_err(|error| compile_error(kind, &error))?
                .undeclared_variables(true),
            TemplateKind::Expression => self
                .env
                .compile_expression(source)
                .map_err(|error| compile_error(kind, &error))?
                .undeclared_variables(true),
        };
        // Keyed by what is named in the message, so several uses of one missing step make one
        // sentence, and sorted, so the same definition always gets the same answer.
        let mut problems = BTreeMap::new();
        for variable in &variables {
            if let Some((key, problem)) = self.refusal(kind, variable, template.earlier_steps) {
                problems.insert(key, problem);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.into_values().collect::<Vec<_>>().join(" "))
        }
    }
}

impl Templates {
    /// Why `variable` (a dotted path minijinja found undeclared) may not be used, keyed by what
    /// the message names; `None` when it may.
    fn refusal(
        &self,
        kind: TemplateKind,
        variable: &str,
        earlier_steps: EarlierSteps<'_>,
    ) -> Option<(String, String)> {
        let mut parts = variable.split('.');
        let root = parts.next().unwrap_or_default();
        if root == INPUT {
            return None;
        }
        if root == STEPS {
            return match parts.next() {
                Some(step) if earlier_steps.contains(step) => None,
                Some(step) => {
                    let named = format!("{STEPS}.{step}");
                    let problem = format!(
                        "`{named}` is not an earlier step; a step may only use the output of \
                         steps before it."
                    );
                    Some((named, problem))
                }
                // `steps` alone, or `steps[...]`, `for s in steps`: which step is used cannot be
                // known before the run, so nor can whether it is an earlier one.
                None => Some((
                    STEPS.to_owned(),
                    format!(
                        "`{STEPS}` must name the step whose output it uses, as in \
                         `{STEPS}.<name>`."
                    ),
                )),
            };
        }
        // The built-in functions (`range`, `dict`, `namespace`) are globals: minijinja reports
        // them with the variables, but they are part of the language, not data.
        if self.env.globals().any(|(name, _)| name == root) {
            return None;
        }
        Some((
            variable.to_owned(),
            format!(
                "`{variable}` is not available; {} may use `{INPUT}.*` and \
                 `{STEPS}.<earlier step>.*`.",
                plural(kind)
            ),
        ))
    }
}

/// Something that went wrong rendering a template or evaluating a condition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    message: String,
}

impl RenderError {
    fn new(message: String) -> Self {
        Self { message }
    }

    /// What went wrong, for the person reading the run's record.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The context as minijinja sees it. (minijinja 3 converts Serde values through the explicit
/// `Serde` wrapper; `Value::from_serialize` is gone.)
fn context_value(context: &serde_json::Value) -> Value {
    Value::from(Serde(context))
}

/// Refuses a source too long to be worth compiling.
fn bounded(kind: TemplateKind, source: &str) -> Result<(), String> {
    if source.len() > MAX_SOURCE_BYTES {
        Err(format!(
            "the {} is longer than 64 KiB ({} bytes); shorten it",
            noun(kind),
            source.len()
        ))
    } else {
        Ok(())
    }
}

/// The message for a source that does not compile.
fn compile_error(kind: TemplateKind, error: &minijinja::Error) -> String {
    // A compile error is a syntax error: minijinja's detail says what is wrong, its kind would
    // only repeat "syntax error".
    let description = error
        .detail()
        .map_or_else(|| error.kind().to_string(), str::to_owned);
    format!(
        "the {} does not compile: {}",
        noun(kind),
        located(&description, error)
    )
}

/// The message for a template or condition that compiled but failed while running.
fn run_error(kind: TemplateKind, error: &minijinja::Error) -> String {
    // Here the kind ("undefined value", "invalid operation") is the news, the detail its context.
    let description = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    let verb = match kind {
        TemplateKind::Template => "rendered",
        TemplateKind::Expression => "evaluated",
    };
    format!(
        "the {} could not be {verb}: {}",
        noun(kind),
        located(&description, error)
    )
}

/// `description` with the line it concerns, when known. minijinja's own `Display` would name
/// the internal template name (`<string>`), which means nothing to the author.
fn located(description: &str, error: &minijinja::Error) -> String {
    match error.line() {
        Some(line) => format!("{description} (line {line})"),
        None => description.to_owned(),
    }
}

fn noun(kind: TemplateKind) -> &'static str {
    match kind {
        TemplateKind::Template => "template",
        TemplateKind::Expression => "condition",
    }
}

fn plural(kind: TemplateKind) -> &'static str {
    match kind {
        TemplateKind::Template => "templates",
        TemplateKind::Expression => "conditions",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let templates = super::Templates::new();
        let source =
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
        let error = templates.render(source, &json!({})).unwrap_err();
        assert!(error.message().contains("fuel"), "{}", error.message());
        let fine = templates.render("{% for i in range(1000) %}{{ i }}{% endfor %}", &json!({}));
        assert!(fine.is_ok());
    }

    use super::*;
    use ipa_workflow::StepNames;

    fn check(kind: TemplateKind, source: &str, earlier: &[&str]) -> Result<(), String> {
        let names = StepNames::new(earlier.iter().copied().map(Some));
        Templates::new().check(&TemplateCheck {
            kind,
            source: source.to_owned(),
            pointer: "/steps/1/prompt".to_owned(),
            earlier_steps: names.before(earlier.len()),
        })
    }

    fn template(source: &str, earlier: &[&str]) -> Result<(), String> {
        check(TemplateKind::Template, source, earlier)
    }

    fn condition(source: &str, earlier: &[&str]) -> Result<(), String> {
        check(TemplateKind::Expression, source, earlier)
    }

    #[test]
    fn input_and_earlier_steps_may_be_used() {
        let source = "Order {{ input.order_id }} of {{ input }} costs \
                      {{ steps.fetch_order.output.amount }} ({{ steps.fetch_order['status'] }})";
        assert_eq!(template(source, &["fetch_order"]), Ok(()));
    }

    #[test]
    fn a_later_or_unknown_step_is_refused_by_name() {
        let message = template(
            "{{ steps.later.output.a }} {{ steps.later.output.b }} {{ steps.a.output }}",
            &["a"],
        )
        .unwrap_err();
        assert_eq!(
            message,
            "`steps.later` is not an earlier step; a step may only use the output of steps \
             before it."
        );
    }

    #[test]
    fn an_unknown_root_is_refused_by_name() {
        let message = template("{{ secrets.token }} {{ env }}", &[]).unwrap_err();
        assert_eq!(
            message,
            "`env` is not available; templates may use `input.*` and `steps.<earlier step>.*`. \
             `secrets.token` is not available; templates may use `input.*` and \
             `steps.<earlier step>.*`."
        );
    }

    #[test]
    fn steps_must_name_a_step() {
        let expected = "`steps` must name the step whose output it uses, as in `steps.<name>`.";
        assert_eq!(template("{{ steps }}", &["a"]).unwrap_err(), expected);
        assert_eq!(template("{{ steps['a'] }}", &["a"]).unwrap_err(), expected);
        assert_eq!(
            template("{% for s in steps %}{{ s }}{% endfor %}", &["a"]).unwrap_err(),
            expected
        );
    }

    #[test]
    fn all_problems_are_reported_sorted() {
        let message =
            template("{{ zeta }} {{ steps.b.x }} {{ steps }} {{ alpha }}", &[]).unwrap_err();
        let alpha = message.find("`alpha`").unwrap();
        let steps = message.find("`steps` must").unwrap();
        let steps_b = message.find("`steps.b`").unwrap();
        let zeta = message.find("`zeta`").unwrap();
        assert!(
            alpha < steps && steps < steps_b && steps_b < zeta,
            "{message}"
        );
    }

    #[test]
    fn a_template_syntax_error_is_refused() {
        let message = template("Hello {{ input.name ", &[]).unwrap_err();
        assert!(
            message.starts_with("the template does not compile: unexpected end of input"),
            "{message}"
        );
        assert!(message.ends_with("(line 1)"), "{message}");
        assert!(!message.contains("<string>"), "{message}");
    }

    #[test]
    fn a_condition_syntax_error_is_refused() {
        let message = condition("input.amount >", &[]).unwrap_err();
        assert!(
            message.starts_with("the condition does not compile: "),
            "{message}"
        );
        assert!(!message.contains("<expression>"), "{message}");
        assert!(condition("{{ input.amount }}", &[]).is_err());
    }

    #[test]
    fn a_condition_over_an_earlier_step_passes() {
        assert_eq!(condition("steps.a.output.amount > 100", &["a"]), Ok(()));
        let message = condition("steps.a.output.amount > 100", &[]).unwrap_err();
        assert!(
            message.starts_with("`steps.a` is not an earlier step"),
            "{message}"
        );
        let message = condition("amount > 100", &[]).unwrap_err();
        assert!(
            message.contains("conditions may use `input.*`"),
            "{message}"
        );
    }

    #[test]
    fn loop_and_set_variables_are_not_reported() {
        let source = "{% set total = input.total %}{{ total }}\
                      {% for item in input.items %}{{ loop.index }}: {{ item.name }}{% endfor %}\
                      {% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = i %}\
                      {% endfor %}{{ ns.n }}";
        assert_eq!(template(source, &[]), Ok(()));
    }

    #[test]
    fn filters_and_tests_compile() {
        assert_eq!(
            template(
                "{{ input.name | upper }} {{ input.items | length }} \
                 {{ input.x | default('none') }} {% if input.y is defined %}y{% endif %}",
                &[]
            ),
            Ok(())
        );
        assert_eq!(condition("input.tags | length > 0", &[]), Ok(()));
    }

    #[test]
    fn an_overlong_source_is_refused_before_compiling() {
        // Unbalanced on purpose: the length is what is reported, not the syntax.
        let source = format!("{{{{ {}", "a".repeat(MAX_SOURCE_BYTES));
        let message = template(&source, &[]).unwrap_err();
        assert!(
            message.starts_with("the template is longer than 64 KiB"),
            "{message}"
        );
        let just_fits = "a".repeat(MAX_SOURCE_BYTES);
        assert_eq!(template(&just_fits, &[]), Ok(()));
    }

    #[test]
    fn render_uses_nested_values() {
        let context = json!({
            "input": {"name": "ada"},
            "steps": {"fetch": {"output": {"order": {"amount": 120}}}}
        });
        let rendered = Templates::new()
            .render(
                "{{ input.name | upper }} owes {{ steps.fetch.output.order.amount }}",
                &context,
            )
            .unwrap();
        assert_eq!(rendered, "ADA owes 120");
    }

    #[test]
    fn render_refuses_a_missing_value() {
        let context = json!({"input": {"name": "ada"}});
        let templates = Templates::new();
        let error = templates
            .render("Hi {{ input.nickname }}", &context)
            .unwrap_err();
        assert!(
            error
                .message()
                .starts_with("the template could not be rendered: undefined value"),
            "{error}"
        );
        assert!(templates.render("Hi {{ nobody }}", &context).is_err());
        assert!(templates.render("Hi {{ input.name ", &context).is_err());
    }

    #[test]
    fn evaluate_says_whether_a_condition_holds() {
        let templates = Templates::new();
        let context = json!({"input": {"tags": []}, "steps": {"a": {"output": {"amount": 120}}}});
        assert!(
            templates
                .evaluate("steps.a.output.amount > 100", &context)
                .unwrap()
        );
        assert!(
            !templates
                .evaluate("steps.a.output.amount > 200", &context)
                .unwrap()
        );
        assert!(!templates.evaluate("input.tags", &context).unwrap());
        assert!(
            templates
                .evaluate("input.tags is defined", &context)
                .unwrap()
        );
        let error = templates
            .evaluate("steps.a.output.missing", &context)
            .unwrap_err();
        assert!(
            error
                .message()
                .starts_with("the condition could not be evaluated"),
            "{error}"
        );
        assert!(
            templates
                .evaluate("steps.b.output.amount > 1", &context)
                .is_err()
        );
    }
}
