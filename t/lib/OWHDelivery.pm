package OWHDelivery;
# Helpers for the delivery tests: a fresh database per test file, private
# httpd instances (with their dispatcher) on it, and a receiving endpoint
# (the sink) that records every request and answers as the test says. The
# API client, tokens, SQL and polling are OWHTest's (api, token, q_at,
# wait_until), exported from here too; the instances' httpd.conf is OWHConf's.
use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use JSON::PP ();
use Fcntl qw(:flock);
use POSIX ();
use OWHTest qw(api token wait_until free_port q_at prom_parse prom_value);
use OWHConf ();

our @EXPORT = qw(new_database start_httpd start_sink emit q_at wait_settled api token wait_until free_port
                 prom_parse prom_value);

my $JSON = JSON::PP->new->canonical->allow_nonref;
my @instances;
my $dbn = 0;

# A fresh database in the test cluster: other test files' webhooks never see
# this file's events.
sub new_database {
    my $name = sprintf('owh_dlv_%d_%d', $$, ++$dbn);
    my $base = $ENV{OWH_TEST_CONNINFO};
    q_at($base, "CREATE DATABASE $name");
    (my $ci = $base) =~ s/dbname=\S+/dbname=$name/;
    return $ci;
}

# emit(conninfo, event, object (perl data), connection, language, supplier)
sub emit {
    my ($conninfo, $event, $object, $connection, $language, $supplier) = @_;
    return q_at($conninfo, 'SELECT octo_webhooks.emit($1, $2::jsonb, NULLIF($3, \'\'), NULLIF($4, \'\'), NULLIF($5, \'\')::jsonb)',
                $event, $JSON->encode($object), $connection // '', $language // '',
                defined $supplier ? $JSON->encode($supplier) : '')->[0][0];
}

# wait_settled(conninfo, timeout = 20): polls until every event emitted is
# routed and no delivery is pending, every one succeeded or failed for good.
# emit() records in its own transaction and the sink records a request before
# it answers, so then the sink holds every request it will ever get for what
# was emitted: a test of "this was not sent" or "no more than N attempts"
# waits for this, not for a guessed time.
sub wait_settled {
    my ($conninfo, $timeout) = @_;
    return wait_until(sub {
        q_at($conninfo, q{SELECT (SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'pending')
                                 + (SELECT count(*) FROM octo_webhooks.events WHERE NOT routed)})->[0][0] == 0
    }, $timeout // 20);
}

# ---- private httpd instances ------------------------------------------------
package OWHDelivery::Httpd;
# OWH_ASAN=1 bin/owh test: a wrapper that runs apache2 with libasan preloaded
my $HTTPD = $ENV{OWH_TEST_HTTPD} || '/usr/sbin/apache2';

# start_httpd(conninfo => CI, directives => "more\nlines", guarded => 1,
# dispatcher => 0, modules => [Debian's, by short name], start => 0): an
# httpd on a free port with the module on
# that database, its dispatcher polling every 200 ms; loopback receivers
# allowed unless guarded (the SSRF guard's defaults then). Returns once it
# answers and, unless dispatcher => 0, once its dispatcher runs; start => 0:
# only configured, the test calls $h->start.
sub new {
    my ($class, %opt) = @_;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my $port = OWHTest::free_port();
    my $self = bless { dir => $dir, port => $port, base => "http://127.0.0.1:$port/octo",
                       dispatcher => ($opt{directives} // '') !~ /^\s*OctoWebhooksDispatcher\s+Off/mi, %opt }, $class;
    OWHConf::write_httpd_conf("$dir/httpd.conf", root => $dir, port => $port, database => $opt{conninfo},
        ($opt{guarded} ? () : (allow => '127.0.0.0/8 ::1')), (exists $opt{dispatcher} ? (dispatcher => $opt{dispatcher}) : ()),
        ops => 'all', modules => $opt{modules},
        directives => [ 'StartServers 1', 'ServerLimit 2', 'ThreadsPerChild 10', 'MaxRequestWorkers 20',
                        'OctoWebhooksPollInterval 200ms', split(/\n/, $opt{directives} // '') ]);
    $self->start unless defined $opt{start} && !$opt{start};   # start => 0: the test starts it
    push @instances, $self;
    return $self;
}

sub base { $_[0]{base} }
sub conninfo { $_[0]{conninfo} }
sub conf { "$_[0]{dir}/httpd.conf" }

sub start {
    my ($self) = @_;
    system($HTTPD, '-f', $self->conf, '-k', 'start') == 0 or die "httpd did not start\n";
    OWHTest::wait_until(sub { OWHTest::api('GET', '/webhooks', base => $self->{base})->{code} == 401 }, 20)
        or die "httpd does not answer:\n" . $self->error_log;
    OWHTest::wait_until(sub { $self->dispatcher_pid }, 10) if $self->{dispatcher};
}

sub pid {
    my ($self) = @_;
    open(my $fh, '<', "$self->{dir}/httpd.pid") or return;
    chomp(my $p = <$fh> // '');
    return $p;
}

sub error_log {
    my ($self) = @_;
    open(my $fh, '<', "$self->{dir}/error.log") or return '';
    local $/;
    return <$fh>;
}

# Every live dispatcher of this httpd (OctoWebhooksDispatchers > 1), oldest
# start first, as its status handler lists them.
sub dispatcher_pids {
    my ($self) = @_;
    my $st = $self->status or return;
    return map { $_->{pid} } grep { kill(0, $_->{pid}) && _ppid($_->{pid}) == ($self->pid // -1) }
           sort { $a->{startedAt} cmp $b->{startedAt} || $a->{pid} <=> $b->{pid} } @{ $st->{dispatchers} || [] };
}

# GET /octo-status (JSON) and /octo-metrics (text) of this httpd.
sub status  { my $r = $_[0]->_ops_get('/octo-status');  return $r && $r->{json} }
sub metrics { my $r = $_[0]->_ops_get('/octo-metrics'); return $r && $r->{body} }
sub _ops_get {
    my ($self, $path) = @_;
    my $r = OWHTest::api('GET', $path, base => "http://127.0.0.1:$self->{port}", openapi => 0);
    return $r->{code} == 200 ? $r : undef;
}

# The dispatcher started last that is still alive.
sub dispatcher_pid { my @p = $_[0]->dispatcher_pids; return $p[-1] }

sub _ppid {
    open(my $fh, '<', "/proc/$_[0]/stat") or return -1;
    my $s = <$fh>;
    return $s =~ /\) \S (\d+)/ ? $1 : -1;
}

sub graceful {
    my ($self) = @_;
    my $old = $self->dispatcher_pid;
    system($HTTPD, '-f', $self->conf, '-k', 'graceful');
    OWHTest::wait_until(sub { my $p = $self->dispatcher_pid; $p && (!$old || $p != $old) }, 20);
}

sub stop {
    my ($self) = @_;
    my $pid = $self->pid or return;
    system($HTTPD, '-f', $self->conf, '-k', 'stop');
    OWHTest::wait_until(sub { !kill(0, $pid) }, 20);
    delete $self->{running};
}

# ---- the sink ---------------------------------------------------------------
package OWHDelivery::Sink;
use Fcntl qw(:flock);
use Time::HiRes qw(time sleep);
use HTTP::Daemon ();
use HTTP::Response ();

sub new {
    my ($class) = @_;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my $d = HTTP::Daemon->new(LocalAddr => '127.0.0.1', LocalPort => 0, ReuseAddr => 1, Listen => 128,
                              Timeout => 30) or die "sink: $!";
    my $self = bless { dir => $dir, port => $d->sockport }, $class;
    $self->_write_json('behave.json', {});
    my $pid = fork // die;
    if (!$pid) {
        # its own process group, so stop() takes the connection children too;
        # _exit: the test's END blocks are not the sink's to run
        setpgrp(0, 0);
        $SIG{CHLD} = 'IGNORE';
        while (1) {
            my $c = $d->accept or next;
            my $kid = fork;
            if (defined $kid && !$kid) {
                while (my $req = $c->get_request) { $self->_serve($c, $req) }
                POSIX::_exit(0);
            }
            close $c;
        }
    }
    $self->{pid} = $pid;
    close $d;
    push @instances, $self;
    return $self;
}

sub url { "http://127.0.0.1:$_[0]{port}" . ($_[1] // '/') }

sub _read_json {
    my ($self, $name) = @_;
    open(my $fh, '<', "$self->{dir}/$name") or return {};
    local $/;
    return eval { $JSON->decode(<$fh>) } || {};
}

sub _write_json {
    my ($self, $name, $data) = @_;
    open(my $fh, '>', "$self->{dir}/$name.tmp") or die;
    print $fh $JSON->encode($data);
    close $fh;
    rename "$self->{dir}/$name.tmp", "$self->{dir}/$name";
}

# behave('/path', codes => [500, 200], delay => 0, headers => {...}, body => '...'):
# the Nth request to path gets the Nth code (the last repeats), after delay
# seconds, with those headers and body. behave('/path#text', ...) applies to
# the requests to path whose body contains text, counted on their own.
sub behave {
    my ($self, $path, %opt) = @_;
    my $b = $self->_read_json('behave.json');
    $b->{$path} = { codes => $opt{codes} || [200], delay => $opt{delay} || 0,
                    headers => $opt{headers} || {}, body => $opt{body} };
    $self->_write_json('behave.json', $b);
}

sub _serve {
    my ($self, $c, $req) = @_;
    my $path = $req->uri->path;
    my $behave = $self->_read_json('behave.json');
    my ($key) = grep { /^\Q$path\E#(.*)$/s && index($req->content, $1) >= 0 } sort keys %$behave;
    $key //= $path;
    open(my $lock, '>>', "$self->{dir}/lock") or die;
    flock($lock, LOCK_EX);
    my $counts = $self->_read_json('counts.json');
    my $n = $counts->{$key}++ // 0;
    $self->_write_json('counts.json', $counts);
    my %h;
    $req->headers->scan(sub { $h{ lc $_[0] } = $_[1] });
    open(my $log, '>>', "$self->{dir}/requests.log") or die;
    print $log $JSON->encode({ method => $req->method, path => $path, query => $req->uri->query,
                               uri => $req->uri->as_string, headers => \%h, body => $req->content,
                               time => time, n => $n }), "\n";
    close $log;
    close $lock;
    return $self->_fake_octo($c, $req, \%h) if $path =~ m{^/octo-api/} && !$behave->{$key};
    my $b = $behave->{$key} || { codes => [200], delay => 0 };
    my @codes = @{ $b->{codes} };
    my $code = $codes[ $n < @codes ? $n : $#codes ];
    sleep $b->{delay} if $b->{delay};
    my $res = HTTP::Response->new($code);
    $res->content($b->{body} // "sink says $code");
    $res->header('Content-Type' => 'text/plain');
    $res->header($_ => $b->{headers}{$_}) for keys %{ $b->{headers} || {} };
    $c->send_response($res);
}

# A fake supplier OCTO API under /octo-api/ (resolve mode): GET
# /bookings/{uuid}, /orders/{id}, /products/{id} and POST /availability answer
# from the state set with octo_state(), shaped like a real supplier would by
# the request's Octo-Capabilities and Accept-Language: octo/pricing adds
# pricing, octo/content a title in the asked language, octo/cardPayments a
# cardPayment session. Unknown objects: 404.
sub octo_state { $_[0]->_write_json('octo.json', $_[1]) }

sub _fake_octo {
    my ($self, $c, $req, $h) = @_;
    my $state = $self->_read_json('octo.json');
    my %caps = map { s/^\s+|\s+$//gr => 1 } split /,/, $h->{'octo-capabilities'} // '';
    my $lang = $h->{'accept-language'};
    my ($kind, $id) = $req->uri->path =~ m{^/octo-api/(bookings|orders|products|availability)/?(.*)$};
    my $obj;
    if (($kind // '') eq 'availability') {
        my $q = eval { $JSON->decode($req->content) } || {};
        $obj = [ map { { id => $_, productId => $q->{productId}, optionId => $q->{optionId},
                         status => ($state->{"availability:$_"} // {})->{status} // 'AVAILABLE' } }
                 @{ $q->{availabilityIds} || [] } ];
    }
    elsif ($kind && $state->{$id}) {
        $obj = { ($kind eq 'bookings' ? 'uuid' : 'id') => $id, %{ $state->{$id} } };
        $obj->{pricing} = { retail => 1000, currency => 'EUR' } if $caps{'octo/pricing'};
        $obj->{title} = 'Tour (' . ($lang // 'default') . ')' if $caps{'octo/content'};
        $obj->{cardPayment} = { gateway => 'stripe', stripe => { clientSecret => 'pi_fake_secret' } }
            if $caps{'octo/cardPayments'};
    }
    my $res = HTTP::Response->new($obj ? 200 : 404);
    $res->content($obj ? $JSON->encode($obj) : '{"error":"NOT_FOUND"}');
    $res->header('Content-Type' => 'application/json');
    $c->send_response($res);
}

# The recorded requests (to one path, or all), bodies decoded when JSON.
sub requests {
    my ($self, $path) = @_;
    open(my $fh, '<', "$self->{dir}/requests.log") or return [];
    my @r;
    while (my $line = <$fh>) {
        my $r = eval { $JSON->decode($line) } or next;
        next if defined $path && $r->{path} ne $path;
        $r->{json} = eval { $JSON->decode($r->{body}) };
        push @r, $r;
    }
    return \@r;
}

sub wait_for {
    my ($self, %opt) = @_;
    my $want = $opt{count} // 1;
    OWHTest::wait_until(sub { @{ $self->requests($opt{path}) } >= $want }, $opt{timeout} // 20);
    return $self->requests($opt{path});
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'TERM', -$self->{pid};
    waitpid($self->{pid}, 0);
    delete $self->{pid};
}

package OWHDelivery;

sub start_httpd { OWHDelivery::Httpd->new(@_) }
sub start_sink { OWHDelivery::Sink->new(@_) }

END {
    my $rc = $?;
    for my $i (reverse @instances) { eval { $i->stop } }
    $? = $rc;
}

1;
