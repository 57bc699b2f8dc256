"""A hand-made Serendipity-2018 answers file and a 6-movie MovieLens folder (expected values known).

u1 answered m1, m2, m3 and m99 (not in movies.csv); u2 answered m2, m4, m5. Flags:
- u1/m1: s_ser_find TRUE only          -> serendipitous (any), flag_mean 1/8
- u1/m2: all FALSE, s5 = NA            -> not serendipitous, flag_mean 0
- u1/m3: every flag TRUE, s7 = 5       -> serendipitous, flag_mean 1
- u2/m2: m_ser_rel TRUE, s_ser_* NA    -> serendipitous, flag_mean 1/4 (NA flags skipped), strict: 0
- u2/m4: all FALSE, s3 = 2             -> unexpected (s3 < 3), not serendipitous
- u2/m5: all FALSE                     -> not serendipitous
"""

from __future__ import annotations

from pathlib import Path

HEADER = (
    "userId,movieId,rating,timestamp,predictedRating,s1,s2,s3,s4,s5,s6,s7,s8,q,"
    "s_ser_rel,s_ser_find,s_ser_imp,s_ser_rec,m_ser_rel,m_ser_find,m_ser_imp,m_ser_rec"
)
F8 = "FALSE,FALSE,FALSE,FALSE,FALSE,FALSE,FALSE,FALSE"
ROWS = [
    "u1,1,4.0,1486127833000,4.5,4,1,3,4,2,2,5,5,6,FALSE,TRUE,FALSE,FALSE,FALSE,FALSE,FALSE,FALSE",
    f"u1,2,3.5,1486121212000,3.2,1,1,3,2,NA,2,4,2,6,{F8}",
    "u1,3,5.0,1486127837000,4.9,5,5,1,5,5,5,5,5,3,TRUE,TRUE,TRUE,TRUE,TRUE,TRUE,TRUE,TRUE",
    f"u1,99,4.0,1486127838000,4.0,1,1,3,2,2,2,4,2,3,{F8}",
    "u2,2,4.5,1486127900000,4.1,2,4,4,2,4,2,4,2,3,NA,NA,NA,NA,TRUE,FALSE,FALSE,FALSE",
    f"u2,4,4.0,1486127901000,3.9,2,2,2,2,2,2,4,2,3,{F8}",
    f"u2,5,4.0,1486127902000,NA,2,2,4,2,2,2,4,2,3,{F8}",
]
MOVIES = [
    "movieId,title,genres",
    "1,Alpha Quest (1999),Adventure|Fantasy",
    "2,Bravo Laughs (2001),Comedy",
    "3,Charlie Noir (1950),Crime|Film-Noir|Mystery",
    "4,Delta Docs (2010),Documentary",
    "5,Echo Action (2005),Action|Thriller",
    "6,Foxtrot Drama (2012),Drama",
]
# ratings of other MovieLens users: popularity and the heuristic's relevance
RATINGS = ["userId,movieId,rating,timestamp"] + [
    f"{u},{m},{r},{1000000000 + i}"
    for i, (u, m, r) in enumerate(
        [(7, 1, 4.0), (8, 1, 5.0), (9, 1, 2.0), (7, 2, 4.0), (7, 3, 3.0), (8, 4, 4.5), (9, 6, 4.0)]
    )
]
TAGS = ["userId,movieId,tag,timestamp", "7,3,dark,1000000000", "8,3,Dark,1000000001", "7,1,quest,1000000002"]


def write_fixture(root: Path, bom: bool = False) -> tuple[Path, Path]:
    """(answers.csv, movielens dir) under `root`."""
    ml = root / "ml"
    ml.mkdir(parents=True, exist_ok=True)
    (ml / "movies.csv").write_text("\n".join(MOVIES) + "\n")
    (ml / "ratings.csv").write_text("\n".join(RATINGS) + "\n")
    (ml / "tags.csv").write_text("\n".join(TAGS) + "\n")
    survey = root / "survey"
    survey.mkdir(exist_ok=True)
    answers = survey / "answers.csv"
    answers.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join([HEADER, *ROWS]) + "\n").encode())
    return answers, ml
