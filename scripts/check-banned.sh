#!/bin/sh
# Functions that invite overflows or hide errors have no place in src/:
# use tern_buf, snprintf, strtol. Prints offending lines; exit 1 if any.
cd "$(dirname "$0")/.." || exit 2
pattern='\b(strcpy|strcat|sprintf|vsprintf|gets|strncat|strtok|atoi|atol|atof|tmpnam|mktemp)[[:space:]]*\('
if git grep -nE "$pattern" -- 'src/*.c' 'src/*.h' 'bench/*.c'; then
    echo "banned functions used (see scripts/check-banned.sh)"
    exit 1
fi
exit 0
