/* Requests and replies over envelopes (rpc.h). */
#include "rpc.h"

#include <string.h>

#include "keys.h"
#include "roles.h"
#include "wire.h"

static enum fl_err seal_message(struct fl_envelope *ep, const uint8_t to[FL_PEER_KEY_LEN],
                                const Flotilla__V1__Message *m, struct fl_buf *out, uint64_t *seq,
                                char *errbuf)
{
	struct fl_buf body = FL_BUF_INIT;
	enum fl_err rv;

	fl_buf_reset(out);
	if ((rv = fl_wire_pack(m, &body, FL_WIRE_MAX_RELEASE_MESSAGE, errbuf)) != FL_OK)
		goto out;
	rv = fl_envelope_seal_seq(ep, to, body.data, body.len, out, seq, errbuf);
out:
	fl_buf_fini(&body);
	return rv;
}

enum fl_err fl_rpc_seal_request(struct fl_envelope *ep, const uint8_t to[FL_PEER_KEY_LEN],
                                const Flotilla__V1__Message *m, struct fl_buf *out, uint64_t *seq,
                                char *errbuf)
{
	if (m->reply_to_seq != 0 || fl_roles_is_reply((int)m->body_case))
		return fl_errf(errbuf, FL_EINVAL, "a %s with reply_to_seq %llu is no request",
		               fl_wire_body_name((int)m->body_case),
		               (unsigned long long)m->reply_to_seq);
	return seal_message(ep, to, m, out, seq, errbuf);
}

enum fl_err fl_rpc_seal_reply(struct fl_envelope *ep, const uint8_t to[FL_PEER_KEY_LEN],
                              uint64_t request_seq, Flotilla__V1__Message *m, struct fl_buf *out,
                              char *errbuf)
{
	uint64_t seq;

	if (request_seq == 0 || !fl_roles_is_reply((int)m->body_case))
		return fl_errf(errbuf, FL_EINVAL, "a %s is no reply to request %llu",
		               fl_wire_body_name((int)m->body_case),
		               (unsigned long long)request_seq);
	m->reply_to_seq = request_seq;
	return seal_message(ep, to, m, out, &seq, errbuf);
}

enum fl_err fl_rpc_open_request(struct fl_envelope *ep, const void *data, size_t len,
                                size_t max_size, struct fl_envelope_opened *o,
                                Flotilla__V1__Message **m, enum fl_envelope_reason *reason,
                                char *errbuf)
{
	enum fl_err rv;

	*m = NULL;
	if ((rv = fl_envelope_open(ep, data, len, max_size, o, reason, errbuf)) != FL_OK)
		return rv;
	if ((rv = fl_wire_unpack_from(o->sender.role, o->body, o->body_len, m, errbuf)) != FL_OK)
		return rv;
	/* unpack_from lets a coordinator send replies; here a request belongs. */
	if (fl_roles_is_reply((int)(*m)->body_case)) {
		rv = fl_errf(errbuf, FL_EAUTH, "a %s where a request belongs",
		             fl_wire_body_name((int)(*m)->body_case));
		fl_wire_free(*m);
		*m = NULL;
		return rv;
	}
	return FL_OK;
}

enum fl_err fl_rpc_open_reply(struct fl_envelope *ep, const void *data, size_t len, size_t max_size,
                              const uint8_t from[FL_PEER_KEY_LEN], uint64_t request_seq,
                              struct fl_envelope_opened *o, Flotilla__V1__Message **m,
                              enum fl_envelope_reason *reason, char *errbuf)
{
	char want[FL_KEY_ID_LEN + 1];
	enum fl_err rv;
	int body;

	*m = NULL;
	if ((rv = fl_envelope_open(ep, data, len, max_size, o, reason, errbuf)) != FL_OK)
		return rv;
	if (memcmp(o->sender.pk, from, FL_PEER_KEY_LEN) != 0) {
		fl_key_id(from, want);
		return fl_errf(errbuf, FL_EAUTH, "reply from %s, but the request went to %s",
		               o->sender.id, want);
	}
	if ((rv = fl_wire_unpack_from(o->sender.role, o->body, o->body_len, m, errbuf)) != FL_OK)
		return rv;
	body = (int)(*m)->body_case;
	if (!fl_roles_is_reply(body) || (*m)->reply_to_seq != request_seq) {
		rv = fl_errf(errbuf, FL_EAUTH, "a %s answering request %llu, not ours (%llu)",
		             fl_wire_body_name(body), (unsigned long long)(*m)->reply_to_seq,
		             (unsigned long long)request_seq);
		fl_wire_free(*m);
		*m = NULL;
		return rv;
	}
	return FL_OK;
}

enum fl_err fl_rpc_redirect_check(struct fl_peers *peers, const Flotilla__V1__Redirect *r,
                                  char *errbuf)
{
	struct fl_peer_info info;
	char id[FL_KEY_ID_LEN + 1];

	if (r == NULL || r->leader_public_key.len != FL_PEER_KEY_LEN)
		return fl_errf(errbuf, FL_EAUTH, "redirect without a leader key");
	fl_key_id(r->leader_public_key.data, id);
	if (fl_peers_find(peers, r->leader_public_key.data, &info) != FL_OK ||
	    info.role != FL_PEER_COORDINATOR || info.revoked)
		return fl_errf(
		    errbuf, FL_EAUTH,
		    "redirect to coordinator key %s, which is not pinned here: not followed", id);
	return FL_OK;
}
