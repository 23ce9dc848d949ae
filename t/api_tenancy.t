# A connection never sees, changes or deletes another connection's webhooks.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHTest;
use JSON::PP ();

my $a = token("tenant-a-$$", ['octo:read.webhooks', 'octo:write.webhooks']);
my $b = token("tenant-b-$$", ['octo:read.webhooks', 'octo:write.webhooks']);
my $url = "https://shared.example.com/hook-$$";

my $wa = api('POST', '/webhooks', token => $a, json => { event => 'booking_update', url => $url })->{json};
my $wb = api('POST', '/webhooks', token => $b, json => { event => 'booking_update', url => $url })->{json};
ok($wa->{id} && $wb->{id}, 'both created');

is_deeply([ map { $_->{id} } @{ api('GET', '/webhooks', token => $b)->{json} } ], [ $wb->{id} ], "B's list has only B's");
is_deeply([ map { $_->{id} } @{ api('GET', '/webhooks', token => $a)->{json} } ], [ $wa->{id} ], "A's list has only A's");

my $r = api('GET', "/webhooks/$wa->{id}", token => $b);
is($r->{code} . ' ' . ($r->{json}{error} // ''), '404 NOT_FOUND', "B cannot GET A's (404, as if absent)");
$r = api('PATCH', "/webhooks/$wa->{id}", token => $b, json => { url => 'https://evil.example.com/' });
is($r->{code}, 404, "B cannot PATCH A's");
$r = api('PATCH', "/webhooks/$wa->{id}", token => $b, json => { url => 'ftp://nope/' });
is($r->{code}, 404, "B's PATCH of A's with a body that cannot apply: 404 too (not 400: nothing said about A's)");
$r = api('PATCH', "/webhooks/$wa->{id}", token => $b, json => { url => 'http://127.0.0.1/' });
is($r->{code}, 404, "... nor with a forbidden URL");
$r = api('DELETE', "/webhooks/$wa->{id}", token => $b);
is($r->{code}, 404, "B cannot DELETE A's");
$r = api('POST', "/webhooks/$wa->{id}/trigger", token => $b, json => {});
is($r->{code}, 404, "B cannot trigger A's");
$r = api('DELETE', '/webhooks', token => $b, json => { url => $url });
is_deeply([ map { $_->{id} } @{ $r->{json} } ], [ $wb->{id} ], "B's delete-by-url deletes only B's");

$r = api('GET', "/webhooks/$wa->{id}", token => $a);
is($r->{code}, 200, "A's webhook is still there");
is($r->{json}{url}, $url, 'unchanged');
done_testing();
