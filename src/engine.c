/*
 * Copyright (c) 2026 The natguard authors
 *
 * Permission to use, copy, modify, and distribute this software for any
 * purpose with or without fee is hereby granted, provided that the above
 * copyright notice and this permission notice appear in all copies.
 *
 * THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
 * WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
 * MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
 * ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
 * WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
 * ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
 * OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
 */

#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "natguard.h"

/*
 * Which container engine runs natguard, from what a container can see of
 * it.  It matters because the engines' port forwarders differ in what they
 * do to the client address (measured, README "Container engines"):
 * rootless Podman's rootlessport hands every client over from the
 * container's own address, rootless Docker's builtin port driver from the
 * network's gateway; rootful engines keep IPv4 clients' addresses.
 *
 * Evidence, strongest first: /run/.containerenv (Podman writes it, with
 * rootless=1 for privileged containers), /.dockerenv (Docker), $container
 * of PID 1 ("podman", set by Podman; "docker", "oci", "lxc" by others),
 * the engine's name in /proc/1/cgroup (gone under cgroup namespaces), and
 * /run/systemd/container.  Rootless: uid 0 of this user namespace is one
 * unprivileged uid of the parent (/proc/self/uid_map "0 1000 1"), where
 * rootful engines map the whole range (or, with userns-remap, a range).
 */

static const char *engine_names[] = {
	[ENGINE_NONE] = "none",
	[ENGINE_CONTAINER] = "container",
	[ENGINE_DOCKER] = "docker",
	[ENGINE_DOCKER_ROOTLESS] = "docker-rootless",
	[ENGINE_PODMAN] = "podman",
	[ENGINE_PODMAN_ROOTLESS] = "podman-rootless",
};

static const char *engine_labels[] = {
	[ENGINE_NONE] = "no container",
	[ENGINE_CONTAINER] = "a container",
	[ENGINE_DOCKER] = "Docker",
	[ENGINE_DOCKER_ROOTLESS] = "rootless Docker",
	[ENGINE_PODMAN] = "Podman",
	[ENGINE_PODMAN_ROOTLESS] = "rootless Podman",
};

const char *
engine_name(enum engine e)
{
	return (engine_names[e]);
}

const char *
engine_label(enum engine e)
{
	return (engine_labels[e]);
}

int
engine_rootless(enum engine e)
{
	return (e == ENGINE_DOCKER_ROOTLESS || e == ENGINE_PODMAN_ROOTLESS);
}

/* Evidence in words: a, b and c joined, after what was noted before. */
static void
note(struct engine_info *info, const char *a, const char *b, const char *c)
{
	size_t	len = strlen(info->evidence);

	snprintf(info->evidence + len, sizeof(info->evidence) - len,
	    "%s%s%.120s%s", len ? "; " : "", a, b, c);
}

/*
 * uid 0's line of a uid_map: "0 OUTSIDE COUNT".  A single unprivileged uid
 * is what rootless engines map; returns it, or 0 for anything else.
 */
static unsigned long
rootless_uid(const char *uid_map)
{
	const char	*p = uid_map;
	unsigned long	 in, out, count;

	while (p != NULL && *p != '\0') {
		if (sscanf(p, "%lu %lu %lu", &in, &out, &count) == 3 &&
		    in == 0)
			return (out != 0 && count == 1 ? out : 0);
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return (0);
}

/* The first cgroup line naming an engine; which engine in *kind. */
static const char *
cgroup_engine(const char *cgroup, enum engine *kind, char *line,
    size_t len)
{
	static const struct { const char *word; enum engine kind; } words[] = {
		{ "libpod", ENGINE_PODMAN },
		{ "docker", ENGINE_DOCKER },
		{ "containerd", ENGINE_CONTAINER },
		{ "kubepods", ENGINE_CONTAINER },
		{ "lxc", ENGINE_CONTAINER },
	};
	const char	*p = cgroup, *nl;
	size_t		 i, n;

	while (p != NULL && *p != '\0') {
		nl = strchr(p, '\n');
		n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		snprintf(line, len, "%.*s", (int)(n < len ? n : len - 1), p);
		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
			if (strstr(line, words[i].word) != NULL) {
				*kind = words[i].kind;
				return (line);
			}
		}
		p = nl != NULL ? nl + 1 : NULL;
	}
	return (NULL);
}

/* The engine the evidence points to, and the evidence in words. */
void
engine_classify(const struct engine_evidence *ev, struct engine_info *info)
{
	enum engine	 kind = ENGINE_NONE, rootless;
	const char	*c = ev->container_env;
	char		 line[128];
	unsigned long	 uid;

	memset(info, 0, sizeof(*info));
	if (ev->containerenv) {
		kind = ENGINE_PODMAN;
		note(info, "/run/.containerenv exists", "", "");
	} else if (ev->dockerenv) {
		kind = ENGINE_DOCKER;
		note(info, "/.dockerenv exists", "", "");
	} else if (c != NULL && *c != '\0') {
		kind = strcmp(c, "podman") == 0 ? ENGINE_PODMAN :
		    strcmp(c, "docker") == 0 ? ENGINE_DOCKER : ENGINE_CONTAINER;
		note(info, "container=", c, " in the environment");
	} else if (ev->cgroup != NULL &&
	    cgroup_engine(ev->cgroup, &kind, line, sizeof(line)) != NULL) {
		note(info, "/proc/1/cgroup: ", line, "");
	} else if (ev->systemd_container != NULL &&
	    *ev->systemd_container != '\0') {
		kind = ENGINE_CONTAINER;
		note(info, "/run/systemd/container says \"",
		    ev->systemd_container, "\"");
	}
	if (kind == ENGINE_DOCKER || kind == ENGINE_PODMAN) {
		rootless = kind == ENGINE_DOCKER ? ENGINE_DOCKER_ROOTLESS :
		    ENGINE_PODMAN_ROOTLESS;
		if (ev->containerenv_text != NULL &&
		    strstr(ev->containerenv_text, "rootless=1") != NULL) {
			kind = rootless;
			note(info, "rootless=1 in /run/.containerenv", "", "");
		} else if ((uid = rootless_uid(ev->uid_map)) != 0) {
			kind = rootless;
			snprintf(line, sizeof(line), "%lu", uid);
			note(info, "uid 0 is uid ", line,
			    " outside (/proc/self/uid_map)");
		}
	}
	if (kind == ENGINE_NONE)
		note(info, "no /.dockerenv, /run/.containerenv, $container "
		    "or /run/systemd/container, and no container engine in "
		    "/proc/1/cgroup", "", "");
	info->kind = kind;
}

static int
exists_in(const char *root, const char *path)
{
	struct stat	 sb;
	char		*p;
	int		 rc;

	xasprintf(&p, "%s%s", root, path);
	rc = stat(p, &sb) == 0;
	free(p);
	return (rc);
}

/* $container from PID 1's environment (NUL-separated), else ours. */
static char *
container_env(const char *root)
{
	char		*p, *text, *v = NULL;
	const char	*e;
	size_t		 len;

	xasprintf(&p, "%s/proc/1/environ", root);
	text = read_small_len(p, &len);
	free(p);
	if (text != NULL) {
		for (e = text; e < text + len; e += strlen(e) + 1) {
			if (strncmp(e, "container=", 10) == 0) {
				v = xstrdup(e + 10);
				break;
			}
		}
		free(text);
	}
	/* PID 1 may not be ours to read (a dropped user); our own is. */
	if (v == NULL && *root == '\0' && (e = getenv("container")) != NULL)
		v = xstrdup(e);
	return (v);
}

/* What the engine left where this process can see it; root "" is "/". */
void
engine_detect(const char *root, struct engine_info *info)
{
	struct engine_evidence	 ev;
	char			*cenv, *cgroup, *uid_map, *env, *sysd;

	memset(&ev, 0, sizeof(ev));
	ev.dockerenv = exists_in(root, "/.dockerenv");
	ev.containerenv = exists_in(root, "/run/.containerenv");
	ev.containerenv_text = cenv = read_small_in(root, "/run/.containerenv");
	ev.cgroup = cgroup = read_small_in(root, "/proc/1/cgroup");
	ev.uid_map = uid_map = read_small_in(root, "/proc/self/uid_map");
	ev.container_env = env = container_env(root);
	sysd = read_small_in(root, "/run/systemd/container");
	if (sysd != NULL)
		sysd[strcspn(sysd, "\n")] = '\0';
	ev.systemd_container = sysd;
	engine_classify(&ev, info);
	/* A pod: kube-proxy may stand between every client and us. */
	info->kubernetes = getenv("KUBERNETES_SERVICE_HOST") != NULL ||
	    exists_in(root, "/var/run/secrets/kubernetes.io/serviceaccount");
	free(cenv);
	free(cgroup);
	free(uid_map);
	free(env);
	free(sysd);
}
