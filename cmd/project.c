/* The project file on the command side: found once, named by default. */
#include <stdio.h>

#include "cmd.h"

const struct project *ctx_project(struct nook_ctx *ctx, int *bad)
{
	*bad = 0;
	if (!ctx->have_project) {
		int rc = project_open(&ctx->project);

		ctx->have_project = rc > 0 ? 1 : rc == 0 ? -1 : -2;
	}
	*bad = ctx->have_project == -2;
	return ctx->have_project == 1 ? &ctx->project : NULL;
}

const char *ctx_default_name(struct nook_ctx *ctx)
{
	int bad;
	const struct project *p = ctx_project(ctx, &bad);

	if (bad)
		return NULL;
	return p ? p->name : "default";
}

void ctx_free(struct nook_ctx *ctx)
{
	if (ctx->have_dirs)
		nook_dirs_free(&ctx->dirs);
	ctx->have_dirs = 0;
	project_free(&ctx->project);
	ctx->have_project = 0;
}
