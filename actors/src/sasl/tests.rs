use super::*;

fn metadata_with(user: &str, credential: ScramCredential, mechanism: &str) -> Arc<ClusterMetadata> {
    let mut m = ClusterMetadata::default();
    m.scram_credentials.entry(user.into()).or_default().insert(mechanism.into(), credential);
    Arc::new(m)
}

fn text(step: Step) -> String {
    match step {
        Step::Continue(bytes) | Step::Done { reply: bytes, .. } => String::from_utf8(bytes).expect("utf-8"),
        Step::Failed(why) => panic!("refused: {why}"),
    }
}

/// RFC 7677's SCRAM-SHA-256 example, byte for byte.
#[test]
fn rfc_7677_example_exchange() {
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
    let hash = Hash::Sha256;
    let credential = hash.credential(&hash.salted_password(b"pencil", &salt, 4096), &salt, 4096);
    let mut exchange = Exchange::start("SCRAM-SHA-256", metadata_with("user", credential, "SCRAM-SHA-256")).unwrap();
    exchange.server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into();
    let server_first = text(exchange.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
    assert_eq!(server_first, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    let last = exchange.step(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    );
    assert!(matches!(&last, Step::Done { user, .. } if user == "user"), "{last:?}");
    assert_eq!(text(last), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/// A client as librdkafka 2.0 is one: its final nonce repeats its own part.
fn client_final(hash: Hash, password: &str, client_first_bare: &str, server_first: &str, doubled: bool) -> String {
    let attrs: Vec<(&str, &str)> = attributes(server_first).collect();
    let get = |k: &str| attrs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v).expect("attribute");
    let client_nonce = attributes(client_first_bare).find(|(k, _)| *k == "r").expect("nonce").1;
    let salt = B64.decode(get("s")).expect("salt");
    let salted = hash.salted_password(password.as_bytes(), &salt, get("i").parse().expect("i"));
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.digest(&client_key);
    let nonce = if doubled { format!("{client_nonce}{}", get("r")) } else { get("r").to_string() };
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hash.hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
    format!("{without_proof},p={}", B64.encode(proof))
}

#[test]
fn scram_sha_512_accepts_the_password_and_librdkafka_2_0_nonces_and_refuses_a_wrong_one() {
    let credential = credential_from_password("SCRAM-SHA-512", "s3cret", MIN_ITERATIONS).expect("mechanism");
    let metadata = metadata_with("al,ice", credential, "SCRAM-SHA-512");
    for (password, doubled, accepted) in [("s3cret", false, true), ("s3cret", true, true), ("wrong", false, false)] {
        let mut exchange = Exchange::start("SCRAM-SHA-512", metadata.clone()).expect("start");
        let bare = "n=al=2Cice,r=abcdefghijklmnop";
        let server_first = text(exchange.step(format!("n,,{bare}").as_bytes()));
        let last = exchange.step(client_final(Hash::Sha512, password, bare, &server_first, doubled).as_bytes());
        match (last, accepted) {
            (Step::Done { user, reply }, true) => {
                assert_eq!(user, "al,ice");
                assert!(reply.starts_with(b"v="));
            }
            (Step::Failed(message), false) => assert!(message.ends_with("SASL mechanism SCRAM-SHA-512"), "{message}"),
            (other, _) => panic!("password {password:?} doubled {doubled}: {other:?}"),
        }
    }
}

#[test]
fn unknown_users_other_mechanisms_and_garbage_are_refused_without_panicking() {
    let credential = credential_from_password("SCRAM-SHA-256", "pw", MIN_ITERATIONS).expect("mechanism");
    let metadata = metadata_with("alice", credential, "SCRAM-SHA-256");
    let refused = |mechanism: &str, messages: &[&[u8]]| {
        let mut exchange = Exchange::start(mechanism, metadata.clone()).expect("start");
        let last = messages.iter().map(|m| exchange.step(m)).last().expect("a message");
        assert!(matches!(last, Step::Failed(_)), "{mechanism} {messages:?}: {last:?}");
    };
    refused("SCRAM-SHA-256", &[b"n,,n=bob,r=abc"]);
    refused("SCRAM-SHA-512", &[b"n,,n=alice,r=abc"]);
    refused("SCRAM-SHA-256", &[b"p=tls-unique,,n=alice,r=abc"]);
    refused("SCRAM-SHA-256", &[b"n,,n=alice,r=abc,tokenauth=true"]);
    refused("SCRAM-SHA-256", &[b"n,,n=al=ZZice,r=abc"]);
    for garbage in [&b""[..], b",", b"n,,", b"\xff\xfe", b"n,,r=", b"n,,n=alice"] {
        refused("SCRAM-SHA-256", &[garbage]);
    }
    for last in [&b"garbage"[..], b"c=biws,r=x,p=AAAA", b"c=????,r=abc,p=AAAA", b"c=biws,p=AAAA"] {
        refused("SCRAM-SHA-256", &[b"n,,n=alice,r=abc", last]);
    }
    assert!(Exchange::start("SCRAM-SHA-1", metadata.clone()).is_err());
}

#[test]
fn plain_accepts_the_right_password_only() {
    let credential = credential_from_password("SCRAM-SHA-512", "s3cret", MIN_ITERATIONS).expect("mechanism");
    let metadata = metadata_with("alice", credential, "SCRAM-SHA-512");
    let mut ok = Exchange::start("PLAIN", metadata.clone()).expect("start");
    assert!(matches!(ok.step(b"\0alice\0s3cret"), Step::Done { ref user, .. } if user == "alice"));
    let mut same_authzid = Exchange::start("PLAIN", metadata.clone()).expect("start");
    assert!(matches!(same_authzid.step(b"alice\0alice\0s3cret"), Step::Done { .. }));
    for wrong in [&b"\0alice\0nope"[..], b"\0mallory\0s3cret", b"bob\0alice\0s3cret", b"garbage", b"\0alice\0s3cret\0"]
    {
        let mut exchange = Exchange::start("PLAIN", metadata.clone()).expect("start");
        assert!(matches!(exchange.step(wrong), Step::Failed(_)), "{wrong:?}");
    }
}

#[test]
fn a_credential_from_a_salted_password_matches_one_from_the_password() {
    let from_password = credential_from_password("SCRAM-SHA-512", "pw", MIN_ITERATIONS).expect("mechanism");
    let salted = Hash::Sha512.salted_password(b"pw", &from_password.salt, MIN_ITERATIONS);
    let from_salted =
        credential_from_salted("SCRAM-SHA-512", &salted, &from_password.salt, MIN_ITERATIONS).expect("mechanism");
    assert_eq!(from_salted, from_password);
    assert!(credential_from_salted("MD5", &salted, b"s", MIN_ITERATIONS).is_none());
}
