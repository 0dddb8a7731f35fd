/* The reference milter of the benchmarks: libmilter with one callback, end of message, which
 * inserts one header field on top as tls-milter does. libmilter declines every other stage in
 * negotiation, so the MTA sends this milter nothing but the negotiation, end of message and quit.
 * Build: cc -O2 -o noop-milter noop-milter.c -lmilter -pthread
 * Run:   noop-milter unix:/path/to.sock   or   noop-milter inet:PORT@127.0.0.1 */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>

static sfsistat noop_eom(SMFICTX *ctx)
{
	if (smfi_insheader(ctx, 0, "X-Noop-Milter", "mx.example.org; v=1 tls=pass") != MI_SUCCESS)
		return SMFIS_TEMPFAIL;
	return SMFIS_CONTINUE;
}

static struct smfiDesc noop_desc = {
	.xxfi_name = "noop-milter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS,
	.xxfi_eom = noop_eom,
};

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s unix:/path | inet:PORT@127.0.0.1\n", argv[0]);
		return 2;
	}
	if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(noop_desc) == MI_FAILURE)
		return 1;
	smfi_setbacklog(1024);
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
