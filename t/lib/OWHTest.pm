package OWHTest;
# Helpers of every test file: the one API client (api) and the one token
# maker (token), SQL through psql (q_at; psql_query on the test server's
# database), polling (wait_until), stopping and starting
# the test PostgreSQL and the Apache::Test httpd. Without a base or db option
# they aim at the Apache::Test server and its database; the delivery tests
# point them at their private instances (t/lib/OWHDelivery.pm). See bin/owh
# for the environment (OWH_TEST_CONNINFO, OWH_TEST_PGBIN, OWH_TEST_PGDATA, ...).
use strict;
use warnings;
use Exporter 'import';
use JSON::PP ();
use LWP::UserAgent ();
use HTTP::Request ();
use Apache::Test ();
use Apache::TestRequest ();
use File::Temp ();
use IO::Socket::INET ();
use Time::HiRes ();
use OWHOpenAPI ();

our @EXPORT = qw(token api psql_query q_at pg_stop pg_start server_restart json_encode wait_until free_port
                 prom_parse prom_value);

my $JSON = JSON::PP->new->canonical->allow_nonref;

sub json_encode { $JSON->encode($_[0]) }

# wait_until(sub { condition }, timeout seconds = 20): polls every 0.1 s;
# returns the condition's first true value, or its last value at the timeout.
sub wait_until {
    my ($cond, $timeout) = @_;
    my $end = Time::HiRes::time() + ($timeout // 20);
    while (Time::HiRes::time() < $end) {
        my $v = $cond->();
        return $v if $v;
        Time::HiRes::sleep(0.1);
    }
    return $cond->();
}

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0) or die;
    my $p = $s->sockport;
    close $s;
    return $p;
}

# psql with -v variables: values never become SQL text.
# q_at(conninfo, sql, params...) -> arrayref of rows; dies on error.
sub q_at {
    my ($ok, $rows) = _psql_at(@_);
    die "psql failed: $_[1]\n" unless $ok;
    return $rows;
}

sub _psql_at {
    my ($conninfo, $sql, @params) = @_;
    my @vars;
    my $i = 0;
    for my $p (@params) {
        $i++;
        push @vars, '-v', "p$i=" . (defined $p ? $p : '');
        $sql =~ s/\$$i\b/:'p$i'/g;
    }
    # psql interpolates :'var' only in scripts, not in -c
    my $file = File::Temp->new(SUFFIX => '.sql');
    print $file "$sql;\n";
    close $file;
    open(my $fh, '-|', 'psql', '-X', '-q', '-A', '-t', '-F', "\x1f", '-v', 'ON_ERROR_STOP=1',
         @vars, '-d', $conninfo, '-f', "$file") or die "psql: $!";
    my @rows = map { chomp; [ split /\x1f/, $_, -1 ] } grep { length } <$fh>;
    close $fh;
    return ($? == 0, \@rows);
}

sub psql_query { q_at($ENV{OWH_TEST_CONNINFO}, @_) }

# token(connection, [abilities], db => conninfo) -> a fresh token of the
# connection with these abilities, in the test server's database unless db
# says another. The schema is made by the module when its httpd starts: a
# failure is retried for a while.
sub token {
    my ($connection, $abilities, %opt) = @_;
    ref $abilities eq 'ARRAY' or die "token(connection, [abilities], db => ...)\n";
    my $db = $opt{db} // $ENV{OWH_TEST_CONNINFO};
    my $list = '{' . join(',', map { qq("$_") } @$abilities) . '}';
    my $tok = wait_until(sub {
        my ($ok, $rows) = _psql_at($db, 'SELECT octo_webhooks.create_token($1, $2::text[], $3)',
                                   $connection, $list, 'test');
        return $ok && @$rows ? $rows->[0][0] : undef;
    }, 10);
    return $tok // die "cannot create a token for $connection\n";
}

my $ua;

# api(METHOD, PATH, %opt) -> { code, json, body, headers, res }
#   base     where PATH is relative to: a private instance's $h->base; default
#            the Apache::Test server with prefix (default /octo)
#   token    Bearer token; auth: a whole Authorization header instead
#   caps     Octo-Capabilities; headers: { more => headers }
#   json     a body encoded as JSON; body: a raw body; ctype: its Content-Type
#   query    the query string
#   openapi  0: not an API route (/octo-metrics, /octo-status, /server-status),
#            so not checked against openapi/openapi.json
sub api {
    my ($method, $path, %opt) = @_;
    $ua ||= LWP::UserAgent->new(timeout => 30, keep_alive => 0);
    my $base = $opt{base} // 'http://' . Apache::TestRequest::hostport()
                                       . (exists $opt{prefix} ? $opt{prefix} : '/octo');
    my $url = $base . $path;
    $url .= '?' . $opt{query} if defined $opt{query};
    my $req = HTTP::Request->new($method => $url);
    $req->header(Authorization => "Bearer $opt{token}") if defined $opt{token};
    $req->header(Authorization => $opt{auth}) if defined $opt{auth};
    $req->header('Octo-Capabilities' => $opt{caps}) if defined $opt{caps};
    if (exists $opt{json}) {
        $req->content($JSON->encode($opt{json}));
        $req->header('Content-Type' => $opt{ctype} || 'application/json');
    }
    elsif (defined $opt{body}) {
        $req->content($opt{body});
        $req->header('Content-Type' => $opt{ctype} || 'application/json');
    }
    if ($opt{headers}) { $req->header($_ => $opt{headers}{$_}) for keys %{ $opt{headers} } }
    $req->header('Content-Length' => length($req->content // ''));
    my $res = $ua->request($req);
    OWHOpenAPI::check($method, $path, $res)         # every answer matches openapi/openapi.json
        unless exists $opt{openapi} && !$opt{openapi};
    my $body = $res->decoded_content // '';
    my $json = eval { $JSON->decode($body) };
    return { code => $res->code, json => $json, body => $body, headers => $res->headers, res => $res };
}

sub _pg_ctl {
    my ($what) = @_;
    my @opts = $what eq 'start' ? ('-o', $ENV{OWH_TEST_PGOPTS} // '', '-l', "$ENV{OWH_TEST_PGDATA}/../pg.log") : ();
    system("$ENV{OWH_TEST_PGBIN}/pg_ctl", '-D', $ENV{OWH_TEST_PGDATA}, '-m', 'fast', '-w', @opts,
           $what) == 0 or die "pg_ctl $what failed\n";
}

sub pg_stop  { _pg_ctl('stop') }
sub pg_start { _pg_ctl('start') }

# Stops and starts the Apache::Test httpd, then waits until it answers.
sub server_restart {
    my $server = Apache::Test::config()->server;
    $server->stop;
    $server->start or die "test server did not start again\n";
    wait_until(sub { my $r = eval { api('GET', '/webhooks') }; $r && $r->{code} == 401 }, 10)
        or die "test server does not answer after restart\n";
    return 1;
}


# The Prometheus text exposition format read by the reference parser
# (python3-prometheus-client, t/bin/prom-parse): its samples as
# [{name, labels, value}], or undef if it does not parse.
sub prom_parse {
    my ($text) = @_;
    require IPC::Open2;
    my $pid = IPC::Open2::open2(my $out, my $in, "$ENV{OWH_SRCDIR}/t/bin/prom-parse");
    print $in $text;
    close $in;
    local $/;
    my $json = <$out>;
    waitpid($pid, 0);
    return $? == 0 ? $JSON->decode($json) : undef;
}

# The value of the sample named $name whose labels include %labels.
sub prom_value {
    my ($samples, $name, %labels) = @_;
    for my $s (@{ $samples || [] }) {
        next unless $s->{name} eq $name;
        next if grep { ($s->{labels}{$_} // '') ne $labels{$_} } keys %labels;
        return $s->{value};
    }
    return undef;
}

1;
