# Data survives an httpd restart.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHTest;

my $tok = token("persist-$$", ['octo:read.webhooks', 'octo:write.webhooks']);
my $w = api('POST', '/webhooks', token => $tok, caps => 'pricing',
            json => { event => 'product_update', url => 'https://e.com/persist', headers => { 'X-A' => '1' } })->{json};
ok($w->{id}, 'created');
server_restart();
my $r = api('GET', "/webhooks/$w->{id}", token => $tok);
is($r->{code}, 200, 'still there after an httpd restart');
is_deeply($r->{json}, $w, 'unchanged');
is(api('GET', '/webhooks', token => $tok)->{json}[0]{id}, $w->{id}, 'listed');
done_testing();
