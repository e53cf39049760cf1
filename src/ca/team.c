/* SPDX-License-Identifier: Apache-2.0 */
/*
 * team.c - the owner's team in a certificate's subject (OU) and SPIFFE ID
 * path; see team.h.  ca_issue() calls these for profiles with
 * team_from_owner, so `duet cert issue`, `sign`, `renew` and enrollment all
 * follow the same rules.
 */
#include "ca/team.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Check a team's text; see team.h. */
int
ca_team_check(const char *team, const char *field, struct duet_err *err)
{
    size_t n = team != NULL ? strlen(team) : 0;

    if (n == 0 || n > CA_TEAM_MAX)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: a team has 1 to %d characters; got %zu", field, CA_TEAM_MAX, n);
    if (strcmp(team, ".") == 0 || strcmp(team, "..") == 0)
        return err_set(err, DUET_ERR_INPUT,
                       "%s: \"%s\" is not a team name; expected letters, digits, '.', '-' or '_'",
                       field, team);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)team[i];
        if (isalnum(c) || c == '.' || c == '-' || c == '_')
            continue;
        if (c == '/')
            return err_set(err, DUET_ERR_INPUT,
                           "%s: a team holds no '/' (offset %zu): it is one segment of the "
                           "SPIFFE ID; expected letters, digits, '.', '-' or '_'",
                           field, i);
        return err_set(err, DUET_ERR_INPUT,
                       "%s: a team holds the byte 0x%02x at offset %zu; expected letters, digits, "
                       "'.', '-' or '_'",
                       field, c, i);
    }
    return 0;
}

/* What a profile's team_from_owner asks of a request; see team.h. */
int
ca_team_require(const struct ca_profile *p, const char *owner, const char *field,
                struct duet_err *err)
{
    if (p->team == 0)
        return 0;
    if (owner == NULL)
        return err_set(err, DUET_ERR_INPUT,
                       "profile %s puts the owner's team in the certificate (team_from_owner); "
                       "give %s TEAM",
                       p->name, field);
    return ca_team_check(owner, field, err);
}

/* Add the team as an OU before the CN; see team.h. */
int
ca_team_add_ou(X509_NAME *subject, const char *team, struct duet_err *err)
{
    int cn = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);

    if (!X509_NAME_add_entry_by_NID(subject, NID_organizationalUnitName, MBSTRING_UTF8,
                                    (const unsigned char *)team, -1, cn, 0))
        return err_set_ssl(err, DUET_ERR_INPUT, "team \"%s\" cannot be a subject OU", team);
    return 0;
}

/* Every SPIFFE ID under the team's path; see team.h. */
int
ca_team_check_names(const GENERAL_NAMES *names, const char *trust_domain, const char *team,
                    const char *profile, struct duet_err *err)
{
    char prefix[512];
    int plen = snprintf(prefix, sizeof(prefix), "spiffe://%s/%s/", trust_domain, team);

    if (plen < 0 || (size_t)plen >= sizeof(prefix))
        return err_set(err, DUET_ERR_INPUT, "team \"%s\": the SPIFFE ID prefix is too long", team);
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        const char *u;
        size_t n;

        if (g->type != GEN_URI)
            continue;
        u = (const char *)ASN1_STRING_get0_data(g->d.ia5);
        n = (size_t)ASN1_STRING_length(g->d.ia5);
        if (n < 9 || strncmp(u, "spiffe://", 9) != 0)
            continue;
        if (n <= (size_t)plen || memcmp(u, prefix, (size_t)plen) != 0)
            return err_set(err, DUET_ERR_INPUT,
                           "profile %s puts the team in the SPIFFE ID: %.*s is not under %s "
                           "(the owner's team); expected %sNAME",
                           profile, (int)(n > 200 ? 200 : n), u, prefix, prefix);
    }
    return 0;
}
