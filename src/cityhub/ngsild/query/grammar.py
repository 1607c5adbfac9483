"""The lark grammars of q (ETSI GS CIM 009 clause 4.9), entity types (4.17) and scopeQ (4.19).

Precedence, as the spec says and Orion-LD, Scorpio and Stellio do: `;` (AND) binds tighter
than `|` (OR); parentheses group and may nest. Beyond the spec's ABNF we accept:
`!attr` (attribute absent, as Orion-LD), whitespace between tokens, an unquoted term as a
value (the spec's `gender==Male&expandValues=gender` example), URIs in value lists, unquoted
or quoted regular expressions, and `A;B` outside parentheses in type and scope expressions.
Not supported: linked-entity paths `rel{attr}` and language wildcards `attr[*]`.
"""

from __future__ import annotations

from cityhub.ngsild.query.ast import (
    MEMBER_PATTERN,
    NAME_PATTERN,
    TYPE_PATTERN,
    URI_PATTERN,
)
from cityhub.ngsild.query.values import DATE_PATTERN, DATETIME_PATTERN, TIME_PATTERN

Q_GRAMMAR = rf"""
?start: or_expr
?or_expr: and_expr ("|" and_expr)*
?and_expr: atom (";" atom)*
?atom: "(" or_expr ")"
     | query_term
query_term: path                      -> exists
           | "!" path                 -> not_exists
           | path EQ_OP eq_value      -> compare
           | path ORD_OP comparable   -> compare
           | path MATCH_OP pattern    -> compare
path: NAME ("." NAME)* members?
members: "[" MEMBER ("." MEMBER)* "]"
eq_value: item                        -> single
        | item ("," item)+            -> value_list
        | comparable ".." comparable  -> value_range
?item: comparable
     | "true"                         -> true
     | "false"                        -> false
     | URI                            -> uri
?comparable: NUMBER                   -> number
           | STRING                   -> string
           | DATETIME                 -> datetime
           | DATE                     -> date
           | TIME                     -> time
pattern: STRING | REGEX

EQ_OP: "==" | "!="
ORD_OP: ">=" | ">" | "<=" | "<"
MATCH_OP: "!~=" | "~="
NAME: /{NAME_PATTERN}/
MEMBER: /{MEMBER_PATTERN}/
URI: /{URI_PATTERN}/
REGEX: /[^\s;|()"][^\s;|()]*/
STRING: /"(?:[^"\\]|\\.)*"/
DATETIME.4: /{DATETIME_PATTERN}/
DATE.3: /{DATE_PATTERN}/
TIME.2: /{TIME_PATTERN}/
NUMBER.1: /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/
%ignore /[ \t]+/
"""

TYPE_GRAMMAR = rf"""
?start: t_or
?t_or: t_and (("|" | ",") t_and)*
?t_and: t_atom (";" t_atom)*
?t_atom: "(" t_or ")"
       | TYPE                         -> type_name
TYPE: /{TYPE_PATTERN}/
%ignore /[ \t]+/
"""

# A scope is lexed whole and its levels checked afterwards, for a precise message.
SCOPE_GRAMMAR = r"""
?start: s_or
?s_or: s_and (("|" | ",") s_and)*
?s_and: s_atom (";" s_atom)*
?s_atom: "(" s_or ")"
       | SCOPE                        -> scope
SCOPE: /\/[^\s;|(),]*/
%ignore /[ \t]+/
"""

# How terminals read in an error message.
TERMINAL_NAMES = {
    "NAME": "an attribute name",
    "MEMBER": "a member name",
    "URI": "a URI",
    "REGEX": "a regular expression",
    "STRING": "a quoted string",
    "DATETIME": "a date-time",
    "DATE": "a date",
    "TIME": "a time",
    "NUMBER": "a number",
    "EQ_OP": "'==' or '!='",
    "ORD_OP": "'>', '>=', '<' or '<='",
    "MATCH_OP": "'~=' or '!~='",
    "TYPE": "an entity type",
    "SCOPE": "a scope such as /a/b",
    "$END": "the end",
}
