/* Coarse markup follower for the parser's own reparse deferral (see scan.h
 * and the top of parser.c). */
#include "xml/scan.h"

static int is_name_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == ':' || c == '-' || c == '.' || c >= 0x80;
}

void tern__xml_scan_init(struct tern__xml_scan *sc) {
    sc->state = TERN__SC_TEXT;
    sc->count = 0;
    sc->tok_start = 0;
}

int tern__xml_scan(struct tern__xml_scan *sc, uint64_t offset, const unsigned char *s, size_t n) {
    int progress = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        switch (sc->state) {
        case TERN__SC_TEXT:
            progress = 1;
            if (c == '<' || c == '&') {
                sc->state = c == '<' ? TERN__SC_LT : TERN__SC_REF;
                sc->tok_start = offset + i;
            }
            break;
        case TERN__SC_LT:
            if (c == '!') {
                sc->state = TERN__SC_BANG;
            } else if (c == '?') {
                sc->state = TERN__SC_PI;
                sc->count = 0;
            } else if (c == '/' || is_name_byte(c)) {
                sc->state = TERN__SC_TAG;
            } else {
                sc->state = TERN__SC_LOST;
                progress = 1;
            }
            break;
        case TERN__SC_TAG:
            if (c == '\'') {
                sc->state = TERN__SC_SQ;
            } else if (c == '"') {
                sc->state = TERN__SC_DQ;
            } else if (c == '>') {
                sc->state = TERN__SC_TEXT;
                progress = 1;
            }
            break;
        case TERN__SC_SQ:
            if (c == '\'')
                sc->state = TERN__SC_TAG;
            break;
        case TERN__SC_DQ:
            if (c == '"')
                sc->state = TERN__SC_TAG;
            break;
        case TERN__SC_BANG:
            if (c == '-') {
                sc->state = TERN__SC_COMMENT;
                sc->count = 1;
            } else if (c == '[') {
                sc->state = TERN__SC_CDATA;
                sc->count = 0;
                progress = 1;
            } else {
                /* <!DOCTYPE and the like: refused by expat's handlers soon. */
                sc->state = TERN__SC_LOST;
                progress = 1;
            }
            break;
        case TERN__SC_COMMENT:
            if (c == '-') {
                if (sc->count < 2)
                    sc->count++;
            } else if (c == '>' && sc->count >= 2) {
                sc->state = TERN__SC_TEXT;
                progress = 1;
            } else {
                sc->count = 0;
            }
            break;
        case TERN__SC_CDATA:
            /* Expat reports CDATA content as it arrives. */
            progress = 1;
            if (c == ']') {
                if (sc->count < 2)
                    sc->count++;
            } else if (c == '>' && sc->count >= 2) {
                sc->state = TERN__SC_TEXT;
            } else {
                sc->count = 0;
            }
            break;
        case TERN__SC_PI:
            if (c == '>' && sc->count) {
                sc->state = TERN__SC_TEXT;
                progress = 1;
            } else {
                sc->count = c == '?';
            }
            break;
        case TERN__SC_REF:
            if (c == ';') {
                sc->state = TERN__SC_TEXT;
                progress = 1;
            } else if (!is_name_byte(c) && c != '#') {
                sc->state = TERN__SC_LOST;
                progress = 1;
            }
            break;
        case TERN__SC_LOST: return 1;
        }
    }
    return progress;
}
