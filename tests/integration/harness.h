/* Integration tests: the real daemon, spoken to over real sockets. */
#ifndef HARNESS_H
#define HARNESS_H

#include <sys/types.h>

#include <check.h>

#define MAX_LISTEN	4

struct daemon {
	pid_t	 pid;
	char	 dir[256];		/* this daemon's files */
	char	 conf[300];
	char	 log[300];		/* its stderr */
	int	 notify_fd;
	char	 listen[MAX_LISTEN][160];	/* as it reported them */
	int	 nlisten;
	int	 nofile;		/* RLIMIT_NOFILE, 0: as inherited */
};

int	 harness_run(Suite *);
void	 harness_init(void);
void	 harness_cleanup(void);
const char *harness_dir(void);
void	 write_file(const char *, const char *);

int	 under_valgrind(void);
int	 daemon_start(struct daemon *, const char *);
void	 daemon_write_config(struct daemon *, const char *);
int	 daemon_reload(struct daemon *);
int	 daemon_stop(struct daemon *);
int	 log_has(const struct daemon *, const char *);
int	 daemon_log_wait(const struct daemon *, const char *, int);
char	*log_text(const struct daemon *);

const char *loopback6_endpoint(void);
int	 have_loopback6(void);
int	 loopback_socket(int, int *);
int	 free_port(int);
int	 conn_open(const char *);
int	 send_str(int, const char *);
int	 send_buf(int, const void *, size_t);
char	*read_reply(int, int);
int	 wait_closed(int, int);
char	*local_name(int);
char	*run_cmd(const char *, int *);
char	*policy_request(const char *, const char *);
long	 rss_kb(pid_t);

#endif
