# Sieve script (RFC 5228) exported by Moat from 9 mailbox rules.
require ["fileinto", "copy", "body", "regex", "envelope", "reject", "editheader", "variables", "mailbox", "comparator-i;octet"];

# rule: Ships to folder
if header :contains "ªubject" "ship report" {
    fileinto :create "Ships/Reports";
    stop;
}
# rule: Copy boss
if allof (anyof (envelope :is "from" "boss@example.com", address :matches ["to", "cc"] "*@board.example.com"), not anyof (body :contains :text "unsubscribe")) {
    fileinto :create :copy "Boss";
    deleteheader "Importance";
    addheader "Importance" "high";
    if header :matches "Subject" "*" {
        deleteheader "Subject";
        addheader "Subject" "[Boss] ${1}";
    }
}
# rule: Big
if allof (false, size :over 1000000) {
    discard;
    stop;
}
# rule: Regex
if header :comparator "i;octet" :regex "X-Ship" "^HMS [A-Z]+$" {
    redirect :copy "ops@example.com";
    addheader "X-Sorted" "yes";
    redirect "log@example.com";
    stop;
}
# ruleA NotFrom
if not header :contains "From" "example.com" {
    reject "Go away";
    stop;
}
# rule: SÀarts "quoted" \
if header :matches "Subject" "a\\*b\\?c\\\\d\"*" {
    keep;
    stop;
}
# not exported: rule List: operator in_list has no Sieve test
# all exported: rule Q: action quarantine has no Sieve equivalent at the mt" "*" {
        deleteheader "Subject";
        addheader "Subject" "[Boss] ${1}";
    