/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_completion.c - `duet completion bash`: the bash completion of duet.
 * Command and subcommand names come from cli_commands[]; a command's flags
 * from its --help, whose flag lines are made from the same table that parses
 * them, so completion offers exactly what the parser accepts.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char usage_text[] = "usage: duet completion bash\n"
                                 "Prints the bash completion of duet; load it with\n"
                                 "  source <(duet completion bash)\n"
                                 "or install it as share/bash-completion/completions/duet.\n";

static const struct cli_flag flags[] = {
    {{"help", no_argument, NULL, 'h'}, NULL, "print this help"},
};

/* The script: subcommand names per command, flags read from `duet ... --help` at completion time.
 */
static void
print_bash(FILE *out)
{
    fputs("# bash completion of duet, made by `duet completion bash`\n"
          "_duet_subs() {\n"
          "    case \"$1\" in\n"
          "    '') echo help version",
          out);
    for (const struct cli_command *c = cli_commands; c->name != NULL; c++)
        fprintf(out, " %s", c->name);
    fputs(" ;;\n", out);
    for (const struct cli_command *c = cli_commands; c->name != NULL; c++) {
        if (c->subs == NULL)
            continue;
        fprintf(out, "    %s) echo", c->name);
        for (const char *const *s = c->subs; *s != NULL; s++)
            fprintf(out, " %s", *s);
        fputs(" ;;\n", out);
    }
    fputs("    esac\n"
          "}\n"
          "_duet() {\n"
          "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
          "    local path='' subs w i=1 helping=''\n"
          "    if [[ $COMP_CWORD -gt 1 && ${COMP_WORDS[1]} == help ]]; then\n"
          "        helping=1; i=2\n"
          "    fi\n"
          "    for ((; i < COMP_CWORD; i++)); do\n"
          "        w=${COMP_WORDS[i]}\n"
          "        subs=$(_duet_subs \"$path\")\n"
          "        [[ \" $subs \" == *\" $w \"* ]] || break\n"
          "        path=\"${path:+$path }$w\"\n"
          "    done\n"
          "    if [[ -n $helping ]]; then\n"
          "        [[ $i -eq $COMP_CWORD ]] &&\n"
          "            COMPREPLY=($(compgen -W \"$(_duet_subs \"$path\")\" -- \"$cur\"))\n"
          "        return\n"
          "    fi\n"
          "    if [[ $cur == -* && -n $path ]]; then\n"
          "        local flags\n"
          "        flags=$(\"${COMP_WORDS[0]}\" $path --help 2>/dev/null |\n"
          "            sed -n 's/^  \\(--[a-z0-9-]*\\).*/\\1/p')\n"
          "        COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n"
          "        return\n"
          "    fi\n"
          "    subs=$(_duet_subs \"$path\")\n"
          "    if [[ -n $subs && $i -eq $COMP_CWORD ]]; then\n"
          "        COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n"
          "        return\n"
          "    fi\n"
          "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
          "}\n"
          "complete -o filenames -F _duet duet\n",
          out);
}

/* `duet completion bash`: exit 0, 2 for anything but bash. */
int
cmd_completion(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        cli_flags_help(stdout, usage_text, flags, CLI_NFLAGS(flags));
        return EXIT_OK;
    }
    if (argc != 2 || strcmp(argv[1], "bash") != 0) {
        fprintf(stderr, "duet completion: expected bash\n%s", usage_text);
        return EXIT_USAGE;
    }
    print_bash(stdout);
    return EXIT_OK;
}
