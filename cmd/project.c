/* The project file on the command side: found once, named by default. */
#include <stdio.h>

#include "cmd.h"

const struct project *ctx_project(struct nook_ctx *ctx, int *bad)
{
	if (!ctx->project_looked) {
		ctx->project_status = project_open(&ctx->project);
		ctx->project_looked = 1;
	}
	*bad = ctx_project_exit(ctx);
	return ctx->project_status == PROJECT_LOADED ? &ctx->project : NULL;
}

const char *ctx_project_wrong_name(const struct nook_ctx *ctx,
				   const char **path)
{
	*path = ctx->project.path;
	return ctx->project_status == PROJECT_INVALID ? ctx->project.name :
							NULL;
}

int ctx_project_exit(const struct nook_ctx *ctx)
{
	if (!ctx->project_looked)
		return 0;
	switch (ctx->project_status) {
	case PROJECT_INVALID:
		return EXIT_USAGE;
	case PROJECT_UNREADABLE:
		return 1;
	default:
		return 0;
	}
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
	ctx->project_looked = 0;
}
