//! The endpoint's request cycle: uploads, top-ups, fallback rotation,
//! queries and claims, with answers given back (and some refused).

use serde_json::{Value, json};

use super::{TestDevice, query_response, user};
use crate::Account;
use crate::consts::MATRIX_ONE_TIME_KEY_TARGET;
use crate::matrix::{
    EndpointError, JsonError, KeysUploadRequest, MatrixEndpoint, OutgoingRequest, RequestId,
    RequestKind, ResponseOutcome,
};

fn endpoint(user_id: &str, device_id: &str) -> MatrixEndpoint {
    MatrixEndpoint::new(Account::new(), user(user_id), super::device(device_id))
}

fn upload(requests: &[OutgoingRequest]) -> Option<(RequestId, &KeysUploadRequest)> {
    requests.iter().find_map(|r| match &r.kind {
        RequestKind::KeysUpload(body) => Some((r.id, body)),
        _ => None,
    })
}

fn query_id(requests: &[OutgoingRequest]) -> Option<RequestId> {
    requests
        .iter()
        .find(|r| matches!(r.kind, RequestKind::KeysQuery(_)))
        .map(|r| r.id)
}

fn counts(n: u64) -> String {
    json!({ "one_time_key_counts": { "signed_curve25519": n } }).to_string()
}

#[test]
fn keys_are_published_once_and_topped_up() {
    let mut alice = endpoint("@alice:a.org", "PHONE");
    let first = alice.outgoing_requests().unwrap();
    assert_eq!(first.len(), 2, "upload and own-user query");
    let (id, body) = upload(&first).unwrap();
    assert!(body.device_keys.is_some());
    assert_eq!(body.one_time_keys.len(), MATRIX_ONE_TIME_KEY_TARGET);
    assert_eq!(body.fallback_keys.len(), 1);
    // Asked again before the answer: the same requests, no new keys.
    assert_eq!(alice.outgoing_requests().unwrap(), first);
    // A sync while the upload is in flight does not trigger more keys.
    alice
        .receive_sync_changes(
            r#"{"device_one_time_keys_count": {}, "device_unused_fallback_key_types": []}"#,
        )
        .unwrap();
    assert_eq!(alice.outgoing_requests().unwrap(), first);

    let body_keys = body.one_time_keys.len() as u64;
    assert_eq!(
        alice.mark_request_as_sent(id, &counts(body_keys)).unwrap(),
        ResponseOutcome::KeysUploaded {
            one_time_key_count: body_keys
        }
    );
    assert_eq!(
        alice.mark_request_as_sent(id, &counts(body_keys)),
        Err(EndpointError::UnknownRequest)
    );
    // Stocked: nothing more to upload.
    assert!(upload(&alice.outgoing_requests().unwrap()).is_none());

    // Keys get claimed; the sync says 45 are left and the fallback is unused.
    alice
        .receive_sync_changes(
            r#"{"device_one_time_keys_count": {"signed_curve25519": 45},
                "device_unused_fallback_key_types": ["signed_curve25519"]}"#,
        )
        .unwrap();
    let requests = alice.outgoing_requests().unwrap();
    let (id, body) = upload(&requests).unwrap();
    assert!(body.device_keys.is_none());
    assert_eq!(body.one_time_keys.len(), 5);
    assert!(body.fallback_keys.is_empty());
    alice.mark_request_as_sent(id, &counts(50)).unwrap();

    // The fallback key was used: a new one is uploaded, exactly once.
    alice
        .receive_sync_changes(
            r#"{"device_one_time_keys_count": {"signed_curve25519": 50},
                "device_unused_fallback_key_types": []}"#,
        )
        .unwrap();
    let requests = alice.outgoing_requests().unwrap();
    let (id, body) = upload(&requests).unwrap();
    assert!(body.one_time_keys.is_empty());
    assert_eq!(body.fallback_keys.len(), 1);
    alice.mark_request_as_sent(id, &counts(50)).unwrap();
    assert!(upload(&alice.outgoing_requests().unwrap()).is_none());
}

#[test]
fn refused_answers_drop_the_request_and_it_comes_back() {
    let mut alice = endpoint("@alice:a.org", "PHONE");
    let first = alice.outgoing_requests().unwrap();
    let (id, body) = upload(&first).unwrap();
    let body = body.clone();
    assert!(matches!(
        alice.mark_request_as_sent(id, r#"{"one_time_key_counts": 5}"#),
        Err(EndpointError::Response(JsonError::Shape { .. }))
    ));
    // Not marked published: the same keys are offered again.
    let again = alice.outgoing_requests().unwrap();
    let (new_id, new_body) = upload(&again).unwrap();
    assert_ne!(new_id, id);
    assert_eq!(new_body, &body);
    let q = query_id(&again).unwrap();
    assert!(alice.mark_request_as_sent(q, "not json").is_err());
    assert!(query_id(&alice.outgoing_requests().unwrap()).is_some());
}

#[test]
fn devices_are_queried_and_keys_claimed() {
    let mut alice = endpoint("@alice:a.org", "PHONE");
    let mut bob = TestDevice::new("@bob:b.org", "BOB1");
    bob.account.generate_one_time_keys(1);
    let bob_upload =
        KeysUploadRequest::from_account(&bob.account, &bob.user, &bob.device, true).unwrap();

    alice.update_tracked_users([&bob.user]);
    let requests = alice.outgoing_requests().unwrap();
    let q = query_id(&requests).unwrap();
    let RequestKind::KeysQuery(body) = &requests.iter().find(|r| r.id == q).unwrap().kind else {
        unreachable!()
    };
    assert_eq!(
        requests.iter().find(|r| r.id == q).unwrap().kind.body(),
        json!({ "device_keys": { "@alice:a.org": [], "@bob:b.org": [] } })
    );
    assert_eq!(body.device_keys.len(), 2);
    let ResponseOutcome::KeysQueried(outcome) = alice
        .mark_request_as_sent(q, &query_response(&[&bob]))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(outcome.new_devices.len(), 1);

    let me = alice.user_id().clone();
    let claim = alice.keys_claim_request([&bob.user, &me]).unwrap();
    assert_eq!(
        claim.kind.body(),
        json!({ "one_time_keys": { "@bob:b.org": { "BOB1": "signed_curve25519" } } })
    );
    let (name, key) = bob_upload.one_time_keys.iter().next().unwrap();
    let response = json!({ "one_time_keys": { "@bob:b.org": { "BOB1": { name: key } } } });
    let ResponseOutcome::KeysClaimed(outcome) = alice
        .mark_request_as_sent(claim.id, &response.to_string())
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(outcome.keys.len(), 1);
    assert_eq!(outcome.keys[0].key, bob.account.one_time_keys()[0].key);

    // Bob leaves every shared room: he is forgotten.
    alice
        .receive_sync_changes(r#"{"device_lists": {"left": ["@bob:b.org"]}}"#)
        .unwrap();
    assert!(alice.keys_claim_request([&bob.user]).is_none());
    let shown = format!("{alice:?}");
    assert!(shown.contains("@alice:a.org"));
    let _: Value = claim.kind.body();
}

/// The specification (client-server API, end-to-end encryption, "Extensions
/// to /sync"): `device_one_time_keys_count` is required whenever unclaimed
/// one-time keys exist, a server may leave out an algorithm whose count is
/// zero, and the whole member when every count is zero. So a sync without
/// it says the server holds none: the endpoint tops up. An absent
/// `device_unused_fallback_key_types` is a server that does not report
/// fallback keys: the published fallback key is not replaced.
#[test]
fn absent_key_counts_mean_zero_and_absent_fallback_types_mean_unreported() {
    let mut alice = endpoint("@alice:a.org", "PHONE");
    let first = alice.outgoing_requests().unwrap();
    let (id, body) = upload(&first).unwrap();
    let target = body.one_time_keys.len() as u64;
    alice.mark_request_as_sent(id, &counts(target)).unwrap();
    assert!(upload(&alice.outgoing_requests().unwrap()).is_none());

    // Neither member: every key was claimed, the fallback key is kept.
    let outcome = alice
        .receive_sync_changes(r#"{"next_batch": "s1"}"#)
        .unwrap();
    assert_eq!(outcome.one_time_key_count, 0);
    assert_eq!(outcome.unused_fallback_key_types, None);
    let requests = alice.outgoing_requests().unwrap();
    let (id, body) = upload(&requests).unwrap();
    assert_eq!(body.one_time_keys.len(), MATRIX_ONE_TIME_KEY_TARGET);
    assert!(body.fallback_keys.is_empty(), "not reported is not used");
    alice.mark_request_as_sent(id, &counts(target)).unwrap();

    // A map without `signed_curve25519`: that algorithm's count is zero.
    alice
        .receive_sync_changes(
            r#"{"device_one_time_keys_count": {"other_algorithm": 7},
                "device_unused_fallback_key_types": ["signed_curve25519"]}"#,
        )
        .unwrap();
    let requests = alice.outgoing_requests().unwrap();
    let (id, body) = upload(&requests).unwrap();
    assert_eq!(body.one_time_keys.len(), MATRIX_ONE_TIME_KEY_TARGET);
    assert!(body.fallback_keys.is_empty());
    alice.mark_request_as_sent(id, &counts(target)).unwrap();

    // A full count and no fallback types: nothing to upload.
    alice
        .receive_sync_changes(r#"{"device_one_time_keys_count": {"signed_curve25519": 50}}"#)
        .unwrap();
    assert!(upload(&alice.outgoing_requests().unwrap()).is_none());
}
