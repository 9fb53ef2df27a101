#!/usr/bin/perl
# SpamAssassin's Bayes probability of each message, and nothing else: one
# Mail::SpamAssassin object (rules dir empty, site config loading only the
# Bayes plugin), then Plugin::Bayes::scan per message.  Prints "FILE\tPROB"
# (0.5 when Bayes declines) and "#cpu SECONDS" of the scans alone.
# Usage: bayes_eval_sa.pl RULES_DIR SITE_DIR USER_PREFS FILE...
use strict;
use warnings;
use Mail::SpamAssassin;
use Mail::SpamAssassin::PerMsgStatus;

my ($rules, $site, $prefs, @files) = @ARGV;
my $sa = Mail::SpamAssassin->new({
	rules_filename => $rules,
	site_rules_filename => $site,
	userprefs_filename => $prefs,
	local_tests_only => 1,
	dont_copy_prefs => 1,
});
$sa->init(1);
my ($bayes) = grep { ref($_) eq 'Mail::SpamAssassin::Plugin::Bayes' }
	@{ $sa->{plugins}->{plugins} };
die "Bayes plugin not loaded\n" unless $bayes;
my $cpu = 0;
for my $f (@files) {
	open(my $fh, '<', $f) or die "$f: $!\n";
	local $/;
	my $text = <$fh>;
	close($fh);
	my $mail = $sa->parse($text);
	my $pms = Mail::SpamAssassin::PerMsgStatus->new($sa, $mail);
	my @t0 = times;
	my $p = $bayes->scan($pms, $mail);
	my @t1 = times;
	$cpu += ($t1[0] - $t0[0]) + ($t1[1] - $t0[1]);
	printf "%s\t%.17g\n", $f, defined $p ? $p : 0.5;
	$pms->finish;
	$mail->finish;
}
printf "#cpu %.4f\n", $cpu;
