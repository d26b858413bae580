//! Planning after a store was adopted (`rapport store adopt`): the ledger before the
//! adoption is gone, so a touch that was already due then may have been sent. For the
//! contacts present at the adoption it is recorded as skipped instead of sent again;
//! contacts added later are planned as usual.

use crate::domain::{Adoption, ContactId, NewTouch, TouchStatus};

/// Whether `t` would go out although it was due before `adoption` (the contact's
/// presence at the adoption decides the rest).
pub fn due_before_adoption(t: &NewTouch, adoption: &Adoption) -> bool {
    !adoption.resend_due && t.status == TouchStatus::Planned && t.due <= adoption.at
}

/// Records as skipped (with `reason`) the touches due before `adoption` whose contact
/// was present at it.
pub fn settle_adopted(
    touches: &mut [NewTouch],
    adoption: &Adoption,
    present: impl Fn(&ContactId) -> bool,
    reason: &str,
) {
    for t in touches
        .iter_mut()
        .filter(|t| due_before_adoption(t, adoption) && present(&t.contact_id))
    {
        t.status = TouchStatus::Skipped;
        t.reason = Some(reason.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::domain::{Channel, TouchId};

    fn at(h: u32) -> DateTime<Utc> {
        format!("2026-12-07T{h:02}:00:00Z").parse().unwrap()
    }

    fn touch(contact: &str, due: DateTime<Utc>) -> NewTouch {
        let contact_id = ContactId::parse(contact).unwrap();
        NewTouch {
            id: TouchId::derive("birthday", &contact_id, "2026"),
            occasion: "birthday".into(),
            contact_id,
            occurrence: "2026".into(),
            channel: Channel::Email,
            priority: 100,
            scheduled_at: at(12),
            due,
            expires_at: at(23),
            status: TouchStatus::Planned,
            reason: None,
        }
    }

    #[test]
    fn only_touches_due_before_the_adoption_for_contacts_present_then_are_skipped() {
        let adoption = Adoption {
            id: "x".into(),
            at: at(10),
            resend_due: false,
        };
        let mut ts = vec![
            touch("old", at(9)),
            touch("later", at(11)),
            touch("new", at(9)),
            touch("edge", at(10)),
        ];
        settle_adopted(&mut ts, &adoption, |c| c.as_str() != "new", "why");
        let status: Vec<_> = ts.iter().map(|t| t.status).collect();
        assert_eq!(
            status,
            [
                TouchStatus::Skipped,
                TouchStatus::Planned,
                TouchStatus::Planned,
                TouchStatus::Skipped
            ]
        );
        assert_eq!(ts[0].reason.as_deref(), Some("why"));
        let resend = Adoption {
            resend_due: true,
            ..adoption
        };
        let mut ts = vec![touch("old", at(9))];
        settle_adopted(&mut ts, &resend, |_| true, "why");
        assert_eq!(ts[0].status, TouchStatus::Planned);
    }
}
