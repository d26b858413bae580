//! Handlebars' built-in `{{log}}` writes the values it is given (a contact's name,
//! address, event data) to the log, at any level the template asks for, so it is
//! replaced: a template that uses it fails, and `rapport check` names it before anything
//! is sent.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderErrorReason,
};

pub(super) struct NoLog;

impl HelperDef for NoLog {
    fn call<'reg: 'rc, 'rc>(
        &self,
        _: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        _: &mut dyn Output,
    ) -> HelperResult {
        Err(RenderErrorReason::Other(
            "the log helper is not available: logs never carry contact data".into(),
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::Channel;
    use crate::render::{Renderer, context, sample_contact};

    #[test]
    fn a_template_that_logs_fails_to_render() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("birthday")).unwrap();
        let sms = dir.path().join("birthday/sms.hbs");
        std::fs::write(&sms, "Hi {{contact.first_name}}").unwrap();
        let ctx = context(&sample_contact("friend"), "birthday", 2026, "B");
        let ok = Renderer::load(dir.path()).unwrap();
        assert_eq!(
            ok.render_text("birthday", Channel::Sms, "friend", &ctx)
                .unwrap(),
            "Hi Ada"
        );
        std::fs::write(
            &sms,
            "Hi {{log contact.first_name level=\"error\"}}{{contact.first_name}}",
        )
        .unwrap();
        let logs = Renderer::load(dir.path()).unwrap();
        let e = logs
            .render_text("birthday", Channel::Sms, "friend", &ctx)
            .unwrap_err();
        assert!(
            e.to_string().contains("the log helper is not available"),
            "{e}"
        );
    }
}
