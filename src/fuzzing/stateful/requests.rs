//! The harness's signed requests: the 401 round trip for a nonce, a retry after 438, the attribute
//! flags of the input, and the reservation token an Allocate names.

use super::*;

impl Harness {
    pub(super) fn pick_token(&self, sel: u8) -> [u8; 8] {
        if sel < 0x80
            && let Some(r) = self.model.reservations.get(usize::from(sel) % self.model.reservations.len().max(1))
        {
            return r.token;
        }
        [sel; 8]
    }

    /// A request signed as `user`: the 401 round trip first when the client has no nonce yet, and a
    /// second try after a 438.
    pub(super) fn signed(
        &mut self,
        c: usize,
        method: Method,
        user: u8,
        flags: u8,
        body: &dyn Fn(&mut MessageWriter<'_>),
    ) {
        let user = usize::from(user) % self.users.len();
        if self.clients[c].nonce.is_none() && flags & flags::UNSIGNED == 0 {
            let request = self.build(method, None, flags, body);
            self.feed(c, &request);
        }
        for _ in 0..2 {
            let nonce = match (&self.clients[c].nonce, flags & flags::BAD_NONCE != 0) {
                (Some(n), false) => n.clone(),
                _ => "0".repeat(48),
            };
            let signer = (flags & flags::UNSIGNED == 0).then_some((user, nonce.as_str()));
            let request = self.build(method, signer, flags, body);
            let (_, answer) = self.feed(c, &request);
            let created = (method == Method::ALLOCATE
                && Message::parse(&answer).is_ok_and(|m| m.message_type().class == Class::SuccessResponse))
            .then(|| self.allocation(c).map(|a| (a.socket.id, answer.clone())))
            .flatten();
            self.clients[c].last = Some(LastRequest { bytes: request, created });
            let stale =
                Message::parse(&answer).is_ok_and(|m| m.get::<ErrorCode>().is_ok_and(|e| e.code == codes::STALE_NONCE));
            if !stale || flags & flags::BAD_NONCE != 0 {
                break;
            }
        }
    }

    fn build(
        &mut self,
        method: Method,
        signer: Option<(usize, &str)>,
        flags: u8,
        body: &dyn Fn(&mut MessageWriter<'_>),
    ) -> Vec<u8> {
        let tid = self.next_tid();
        let mut buf = vec![0u8; 1500];
        let mut w = MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), tid).expect("fits");
        body(&mut w);
        if flags & flags::UNKNOWN_REQUIRED != 0 {
            w.add_raw(0x7F01, b"????").expect("fits");
        }
        if flags & flags::UNKNOWN_OPTIONAL != 0 {
            w.add_raw(0xC001, b"fine").expect("fits");
        }
        if flags & flags::SOFTWARE != 0 {
            w.add(&Software("fuzz client")).expect("fits");
        }
        if let Some((user, nonce)) = signer {
            let u = &self.users[user];
            let realm = if flags & flags::WRONG_REALM != 0 { "other.realm" } else { REALM };
            w.add(&Username(&u.name)).expect("fits");
            w.add(&Realm(realm)).expect("fits");
            w.add(&Nonce(nonce)).expect("fits");
            let password = if flags & flags::WRONG_PASSWORD != 0 { "not the password" } else { &u.password };
            let key = IntegrityKey::new(&long_term_key_md5(&u.name, realm, password));
            w.add_message_integrity(&key).expect("fits");
        }
        if flags & flags::NO_FINGERPRINT == 0 {
            w.add_fingerprint().expect("fits");
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    }
}
