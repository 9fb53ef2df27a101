require ["fileinto", "envelope", "copy", "reject"];
# rule: From the boss
if address :is "from" "boss@example.org" {
    fileinto "Boss";
    stop;
} elsif header :matches "subject" "*[fleet]*" {
    fileinto :copy "Fleet";
    addflag "\\Seen";
} else {
    keep;
}
if anyof (size :over 1M, not exists "Date") { discard; }
if envelope :domain :is "from" "spam.example" { reject "no"; }
if header :value "gt" "X-Spam-Score" "5" { discard; }
vacation "away";
if body :contains "lottery" { redirect "abuse@example.org"; keep; }
if address :localpart :is ["to", "cc"] "ann" { fileinto :create "Me"; }
if header :comparator "i;octet" :regex "X-Ship" "^HMS" { addheader "X-A" "b"; }
