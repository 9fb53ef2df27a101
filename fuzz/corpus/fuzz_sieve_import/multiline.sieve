require "reject";
if header :contains ["Subject","Comments"] ["a","b"] {
 reject text:
line one
..dot
.
;
}
/* comment */ if true { keep; }
