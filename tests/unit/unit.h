/* Unit test suites: one per module, table-driven, a label per case. */
#ifndef UNIT_H
#define UNIT_H

#include <check.h>

Suite	*config_suite(void);
Suite	*request_suite(void);
Suite	*netaddr_suite(void);
Suite	*gateway_suite(void);
Suite	*decide_suite(void);
Suite	*report_suite(void);
Suite	*spfrecord_suite(void);
Suite	*logscan_suite(void);
Suite	*doctor_suite(void);
Suite	*engine_suite(void);
Suite	*hiders_suite(void);
Suite	*migrate_suite(void);

char	*fixture(const char *);
#define NELEMS(a)	(sizeof(a) / sizeof((a)[0]))

#endif
