//! The vault: sealing and opening (and every way a sealed value must fail to open), and the
//! key file (created private and once, reused, refused when exposed or malformed).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use portcullis_auth::vault::{KEY_BYTES, KeyOrigin, VAULT_KEY_FILE, VaultError, VaultKey};

/// A variable no test process sets, so the file is what is used.
const UNSET: &str = "PORTCULLIS_TEST_VAULT_KEY_SURELY_UNSET_41B7";

const AAD: &[u8] = b"portcullis-grant\0alice\0tickets\0https://as.example";
const TOKEN: &[u8] = b"{\"access_token\":\"at-3f9c\"}";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

#[test]
fn a_sealed_value_opens_with_its_key_and_row_and_hides_the_plaintext() {
    let key = VaultKey::generate().unwrap();
    let sealed = key.seal(AAD, TOKEN).unwrap();
    assert_eq!(sealed[0], 1, "format byte");
    assert_eq!(sealed.len(), 1 + 12 + TOKEN.len() + 16);
    assert!(
        !sealed.windows(6).any(|w| w == b"at-3f9"),
        "the ciphertext does not contain the token"
    );
    assert_eq!(&*key.open(AAD, &sealed).unwrap(), TOKEN);
    // A fresh nonce each time: the same value never seals to the same bytes.
    let again = key.seal(AAD, TOKEN).unwrap();
    assert_ne!(sealed, again);
    assert_ne!(sealed[1..13], again[1..13]);
    assert_eq!(&*key.open(AAD, &again).unwrap(), TOKEN);
    // The empty value seals too.
    assert!(
        key.open(b"", &key.seal(b"", b"").unwrap())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_value_sealed_with_another_key_does_not_open() {
    let sealed = VaultKey::generate().unwrap().seal(AAD, TOKEN).unwrap();
    let other = VaultKey::generate().unwrap();
    assert!(matches!(
        other.open(AAD, &sealed),
        Err(VaultError::Unauthentic)
    ));
}

#[test]
fn a_value_moved_to_another_row_does_not_open() {
    let key = VaultKey::generate().unwrap();
    let sealed = key.seal(AAD, TOKEN).unwrap();
    for row in [
        &b"portcullis-grant\0mallory\0tickets\0https://as.example"[..],
        b"portcullis-grant\0alice\0files\0https://as.example",
        b"portcullis-grant\0alice\0tickets\0https://evil.example",
        b"",
    ] {
        assert!(matches!(
            key.open(row, &sealed),
            Err(VaultError::Unauthentic)
        ));
    }
}

#[test]
fn every_altered_truncated_or_unknown_value_is_an_error_not_a_panic() {
    let key = VaultKey::generate().unwrap();
    let sealed = key.seal(AAD, TOKEN).unwrap();
    for i in 1..sealed.len() {
        let mut altered = sealed.clone();
        altered[i] ^= 0x01;
        assert!(
            matches!(key.open(AAD, &altered), Err(VaultError::Unauthentic)),
            "byte {i} flipped"
        );
    }
    for len in 0..sealed.len() {
        let cut = &sealed[..len];
        let error = key.open(AAD, cut).unwrap_err();
        assert!(
            matches!(error, VaultError::Truncated | VaultError::Unauthentic),
            "cut to {len}: {error}"
        );
        if len < 1 + 12 + 16 {
            assert!(matches!(error, VaultError::Truncated), "cut to {len}");
        }
    }
    let mut future = sealed.clone();
    future[0] = 2;
    assert!(matches!(
        key.open(AAD, &future),
        Err(VaultError::UnknownVersion(2))
    ));
    assert!(matches!(
        key.open(AAD, &[0]),
        Err(VaultError::UnknownVersion(0))
    ));
}

#[test]
fn the_key_file_is_created_private_on_first_use_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let first = VaultKey::from_env_or_file(UNSET, &state_dir).unwrap();
    let path = state_dir.join(VAULT_KEY_FILE);
    assert_eq!(first.origin(), &KeyOrigin::File(path.clone()));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        mode(&state_dir),
        0o700,
        "a missing directory is made private"
    );
    assert_eq!(std::fs::read(&path).unwrap().len(), KEY_BYTES);
    let sealed = first.seal(AAD, TOKEN).unwrap();

    let second = VaultKey::from_env_or_file(UNSET, &state_dir).unwrap();
    assert_eq!(&*second.open(AAD, &sealed).unwrap(), TOKEN, "the same key");
    let listed: Vec<_> = std::fs::read_dir(&state_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(listed, vec![VAULT_KEY_FILE], "nothing left beside it");
}

#[test]
fn gateways_starting_at_once_end_up_with_one_key() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<VaultKey> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| VaultKey::from_env_or_file(UNSET, dir.path())))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        let sealed = keys[0].seal(AAD, TOKEN).unwrap();
        for key in &keys {
            assert_eq!(&*key.open(AAD, &sealed).unwrap(), TOKEN);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

#[test]
fn a_key_file_open_to_group_or_others_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    VaultKey::from_env_or_file(UNSET, dir.path()).unwrap();
    let path = dir.path().join(VAULT_KEY_FILE);
    for exposed in [0o640, 0o604, 0o620, 0o644] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(exposed)).unwrap();
        let error = VaultKey::from_env_or_file(UNSET, dir.path()).unwrap_err();
        assert!(
            matches!(error, VaultError::KeyFileExposed { mode, .. } if mode == exposed),
            "{error}"
        );
        let text = error.to_string();
        assert!(
            text.contains(&path.display().to_string()) && text.contains("chmod 600"),
            "{text}"
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    VaultKey::from_env_or_file(UNSET, dir.path()).expect("owner-only read is fine");
}

#[test]
fn a_key_file_of_the_wrong_length_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(VAULT_KEY_FILE);
    for len in [0, 31, 33, 44] {
        std::fs::write(&path, vec![b'k'; len]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = VaultKey::from_env_or_file(UNSET, dir.path()).unwrap_err();
        assert!(
            matches!(error, VaultError::KeyFileWrongLength { len: l, .. } if l == len as u64),
            "{len}: {error}"
        );
        assert!(!error.to_string().contains("kkkk"));
    }
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    assert!(matches!(
        VaultKey::from_env_or_file(UNSET, dir.path()),
        Err(VaultError::KeyFileNotAFile { .. })
    ));
}

#[test]
fn a_reader_never_creates_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        VaultKey::from_env_or_existing_file(UNSET, dir.path())
            .unwrap()
            .is_none()
    );
    assert!(!dir.path().join(VAULT_KEY_FILE).exists());
    let made = VaultKey::from_env_or_file(UNSET, dir.path()).unwrap();
    let sealed = made.seal(AAD, TOKEN).unwrap();
    let read = VaultKey::from_env_or_existing_file(UNSET, dir.path())
        .unwrap()
        .unwrap();
    assert_eq!(&*read.open(AAD, &sealed).unwrap(), TOKEN);
}
