//! Companies (ContactEntity) as both front ends read and save them.

use chrono::{DateTime, Utc};

use super::auth::Principal;
use crate::context::SimContext;
use crate::store::{AssociateRef, CompanyRecord, Contact, ContactFields, Country, ListItem};

/// A save request: the company (0 for a new one) and the fields it sets.
#[derive(Debug, Default)]
pub struct ContactInput {
    pub contact_id: i64,
    pub fields: ContactFields<Option<String>>,
}

/// `0001-01-01T00:00:00`: NetServer's empty date.
const NO_DATE: &str = "0001-01-01T00:00:00";

fn netserver_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

impl Principal {
    fn associate(&self) -> AssociateRef {
        AssociateRef {
            associate_id: self.associate_id,
            name: self.username.clone(),
            full_name: self.full_name.clone(),
        }
    }

    /// `CreateDefaultContactEntity`: an empty company owned by the caller.
    pub fn default_contact(&self) -> Contact {
        Contact {
            contact_id: 0,
            fields: ContactFields::default(),
            updated_date: NO_DATE.to_owned(),
            created_date: NO_DATE.to_owned(),
            associate: self.associate(),
            business: ListItem {
                id: 0,
                value: String::new(),
            },
            category: ListItem {
                id: 0,
                value: String::new(),
            },
            country: Country {
                country_id: 578,
                name: "Norway".to_owned(),
                two_letter_iso_country: "NO".to_owned(),
            },
        }
    }
}

#[derive(Debug)]
pub enum SaveError {
    NotFound(i64),
    Invalid(String),
}

/// `SaveContactEntity`: ContactId 0 creates, anything else updates an existing company.
pub fn save_contact(
    ctx: &SimContext,
    principal: &Principal,
    input: ContactInput,
    via: &'static str,
) -> Result<Contact, SaveError> {
    let now = ctx.clock.now();
    let mut store = ctx.store();
    let tenant = store
        .tenants
        .get_mut(&principal.context_id)
        .ok_or(SaveError::NotFound(input.contact_id))?;
    let mut contact = if input.contact_id == 0 {
        let mut contact = principal.default_contact();
        contact.contact_id = tenant.contacts.keys().next_back().map_or(1, |id| id + 1);
        contact.created_date = netserver_date(now);
        contact
    } else {
        tenant
            .contacts
            .get(&input.contact_id)
            .cloned()
            .ok_or(SaveError::NotFound(input.contact_id))?
    };
    let created = input.contact_id == 0;
    contact.fields.apply(input.fields);
    if contact.fields.name.trim().is_empty() {
        return Err(SaveError::Invalid("Name is required".into()));
    }
    contact.updated_date = if created {
        NO_DATE.to_owned()
    } else {
        netserver_date(now)
    };
    tenant.contacts.insert(contact.contact_id, contact.clone());
    if created {
        store.records.companies.push(CompanyRecord {
            at: now,
            context_id: principal.context_id.clone(),
            contact_id: contact.contact_id,
            name: contact.fields.name.clone(),
            credential: principal.credential.name(),
            via,
            associate_id: principal.associate_id,
        });
    }
    tracing::info!(tenant = %principal.context_id, id = contact.contact_id, via, created, "contact saved");
    Ok(contact)
}
