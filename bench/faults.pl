#!/usr/bin/perl
# bench/faults.pl — the fault run's driver, started by bench/faults with a
# PostgreSQL and an httpd (with its dispatcher) already running.
#
# Processes: two recording sinks (A always answers 200; B's behaviour is set
# by a mode file), an emitter (emit() at a steady rate, each booking event
# carrying a global sequence number), an API client (list, create, get, patch,
# attempt log, delete in a loop), and this controller, which injects one fault
# per phase, waits until the backlog is delivered, then moves on. At the end it
# reads the logs and the events table and prints, per fault: events emitted,
# deliveries expected/received, lost, duplicates, order violations per object,
# API answers other than 2xx, and time to recover. Exit status 1 when anything
# was lost or arrived out of order.
#
# Accounting. Expected deliveries = committed events (the events table, so an
# emit() whose COMMIT was cut by a crash but happened counts) x the two
# webhooks; an emit() acknowledged but missing from the table is lost as well.
# A sink counts a delivery received when it has sent a 2xx status line and
# headers (a receiver that said 200 has it). Duplicates: receptions beyond the
# first of one (webhook, event); they must carry the same webhook-id. Order:
# per webhook and booking, the first receptions' sequence numbers must rise.
use strict;
use warnings;
use DBI;
use Fcntl qw(:flock O_WRONLY O_APPEND O_CREAT);
use IO::Socket::INET ();
use JSON::PP ();
use LWP::UserAgent ();
use HTTP::Request ();
use POSIX ();
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(time sleep);

$| = 1;
my ($W, $PGBIN, $CI, $HTTPPORT, $SINKA, $SINKB) = @ENV{qw(W PGBIN CI HTTPPORT SINKA SINKB)};
my $RATE = $ENV{OWH_FAULTS_RATE} || 20;
my $ONLY = $ENV{OWH_FAULTS_ONLY} || '';
my $BASE = "http://127.0.0.1:$HTTPPORT/octo";
my $HTTPD = '/usr/sbin/apache2';
my $OBJECTS = 30;                       # bookings the events are spread over
my $JSON = JSON::PP->new->canonical;
(my $DSN = "dbi:Pg:$CI") =~ s/ /;/g;
$DSN .= ';connect_timeout=2';
my (@kids, %sink_pid);
my $CONTROLLER = $$;
END { if ($$ == $CONTROLLER) { kill 'KILL', $_ for @kids; stop_sink($_) for keys %sink_pid } }
$SIG{INT} = $SIG{TERM} = sub { exit 130 };

# ---- the sinks --------------------------------------------------------------
sub logline {
    my ($file, @f) = @_;
    sysopen(my $fh, $file, O_WRONLY | O_APPEND | O_CREAT) or die "$file: $!";
    flock($fh, LOCK_EX);
    syswrite($fh, join("\t", @f) . "\n");
    close $fh;
}

sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; return scalar <$fh> }

sub set_mode {
    my ($name, $mode) = @_;
    open(my $fh, '>', "$W/sink-$name.mode.tmp") or die;
    print $fh $mode;
    close $fh;
    unlink "$W/sink-$name.count";
    rename "$W/sink-$name.mode.tmp", "$W/sink-$name.mode" or die;
}

# "big 4": the first 4 requests in this mode get it, then 200 as usual
sub take_mode {
    my ($name) = @_;
    my ($mode, $limit) = split ' ', (slurp("$W/sink-$name.mode") || 'ok');
    return $mode unless $limit;
    open(my $fh, '+>>', "$W/sink-$name.count") or return 'ok';
    flock($fh, LOCK_EX);
    seek($fh, 0, 0);
    my $n = <$fh> // 0;
    return 'ok' if $n >= $limit;
    truncate($fh, 0);
    print $fh $n + 1;
    close $fh;
    return $mode;
}

sub write_all {
    my ($c, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $w = syswrite($c, $data, length($data) - $off, $off);
        return 0 unless $w;
        $off += $w;
    }
    return 1;
}

sub serve_conn {
    my ($name, $c) = @_;
    my $buf = '';
    binmode $c;
    while (1) {
        my $end;
        while (($end = index($buf, "\r\n\r\n")) < 0) { sysread($c, $buf, 65536, length $buf) or return }
        my $head = substr($buf, 0, $end);
        my ($len) = $head =~ /^content-length:\s*(\d+)/im;
        my $need = $end + 4 + ($len // 0);
        while (length $buf < $need) { sysread($c, $buf, 65536, length $buf) or return }
        my $body = substr($buf, $end + 4, $need - $end - 4);
        $buf = substr($buf, $need);
        my ($path) = $head =~ m{^\S+ (\S+)};
        my ($wid) = $head =~ /^webhook-id:\s*(\S+)/im;
        my $b = eval { $JSON->decode($body)->{booking} } || {};
        my $rec = sub { logline("$W/sink.log", sprintf('%.6f', time), $path, $wid // '-', $b->{uuid} // '-',
                                $b->{seq} // -1, $_[0]) };
        my $mode = take_mode($name);
        my $ok = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
        if ($mode eq 'hang') {              # read on, never answer, until the client gives up
            $rec->('hang');
            my $x;
            1 while sysread($c, $x, 65536);
            return;
        }
        elsif ($mode eq 'reset') {          # RST instead of an answer
            $rec->('reset');
            setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
            close $c;
            return;
        }
        elsif ($mode eq '503') {
            $rec->('503');
            write_all($c, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 4\r\n\r\nbusy")
                or return;
        }
        elsif ($mode eq 'big') {            # 200, then 100 MB of body
            my $n = 100 * 1024 * 1024;
            $rec->('ok');
            write_all($c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: $n\r\n\r\n") or return;
            my $chunk = 'x' x (1 << 20);
            for (1 .. 100) { write_all($c, $chunk) or do { $rec->('big-cut'); return } }
            $rec->('big-sent');
        }
        elsif ($mode eq 'trickle') {        # the answer one byte every 100 ms
            my $hend = index($ok, "\r\n\r\n") + 3;
            for my $i (0 .. length($ok) - 1) {
                $rec->('ok') if $i == $hend;
                write_all($c, substr($ok, $i, 1)) or do { $rec->('trickle-cut') if $i <= $hend; return };
                sleep 0.1;
            }
        }
        else {
            sleep 0.3 if $mode eq 'slow';   # keeps deliveries in flight for a kill
            $rec->('ok');
            write_all($c, $ok) or return;
        }
    }
}


sub start_sink {
    my ($name, $port) = @_;
    my $l;
    for (1 .. 50) {
        last if $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 128, ReuseAddr => 1);
        sleep 0.1;
    }
    $l or die "sink $name on $port: $!";
    my $pid = fork // die;
    if (!$pid) {
        setpgrp(0, 0);
        $SIG{CHLD} = 'IGNORE';
        $SIG{PIPE} = 'IGNORE';
        while (1) {
            my $c = $l->accept or next;
            my $k = fork;
            if (defined $k && !$k) { close $l; serve_conn($name, $c); POSIX::_exit(0) }
            close $c;
        }
    }
    close $l;
    $sink_pid{$name} = $pid;
}

sub stop_sink {
    my ($name) = @_;
    my $pid = delete $sink_pid{$name} or return;
    kill 'KILL', -$pid;
    waitpid($pid, 0);
}

# ---- the emitter ------------------------------------------------------------
sub emitter {
    my $dbh;
    my $seq = 0;
    my $next = time;
    until (-e "$W/stop") {
        $seq++;
        my $uuid = 'b-' . (1 + int rand $OBJECTS);
        my $obj = $JSON->encode({ uuid => $uuid, status => 'CONFIRMED', seq => $seq, note => 'x' x 200 });
        my $t0 = time;
        my $ok = eval {
            $dbh ||= DBI->connect($DSN, '', '', { RaiseError => 1, PrintError => 0, AutoCommit => 1 });
            $dbh->selectrow_array(q{SELECT octo_webhooks.emit('booking_update', $1::jsonb, 'res-1')}, undef, $obj);
            1;
        };
        my $err = $ok ? '' : ($@ =~ s/\s+/ /gr);
        if (!$ok) { eval { $dbh->disconnect if $dbh }; undef $dbh }
        logline("$W/emit.log", sprintf('%.6f', $t0), sprintf('%.6f', time), $seq, $uuid, $ok ? 'ok' : 'err',
                substr($err, 0, 120));
        $next += 1 / $RATE;
        my $d = $next - time;
        if ($d > 0) { sleep $d } elsif ($d < -1) { $next = time }
    }
}

# ---- the API client ---------------------------------------------------------
sub api {
    my ($ua, $token, $method, $path, $json, $label) = @_;
    my $req = HTTP::Request->new($method => $BASE . $path);
    $req->header(Authorization => "Bearer $token");
    if ($json) { $req->content($JSON->encode($json)); $req->header('Content-Type' => 'application/json') }
    $req->header('Content-Length' => length($req->content // ''));
    my $t0 = time;
    my $res = $ua->request($req);
    # LWP's own answers (connection refused or reset, timeout) are not the server's
    my $code = ($res->header('Client-Warning') // '') eq 'Internal response' ? 'conn' : $res->code;
    logline("$W/api.log", sprintf('%.6f', $t0), sprintf('%.6f', time), $label // "$method $path", $code);
    return { code => $code, json => scalar(eval { $JSON->decode($res->decoded_content // '') }) };
}

sub api_client {
    my ($tok_api, $tok_1, $wb) = @_;
    my $ua = LWP::UserAgent->new(timeout => 10, keep_alive => 0);
    my $n = 0;
    my $pause = sub { sleep 0.05 };
    until (-e "$W/stop") {
        $n++;
        api($ua, $tok_api, 'GET', '/webhooks', undef, 'list'); $pause->();
        my $c = api($ua, $tok_api, 'POST', '/webhooks',
                    { event => 'booking_update', url => "http://127.0.0.1:$SINKA/api" }, 'create');
        $pause->();
        if ($c->{code} eq '200' && $c->{json} && $c->{json}{id}) {
            my $id = $c->{json}{id};
            api($ua, $tok_api, 'GET', "/webhooks/$id", undef, 'get'); $pause->();
            api($ua, $tok_api, 'PATCH', "/webhooks/$id", { headers => { 'x-n' => "$n" } }, 'patch'); $pause->();
            api($ua, $tok_api, 'DELETE', "/webhooks/$id", undef, 'delete'); $pause->();
        }
        api($ua, $tok_1, 'GET', "/webhooks/$wb/deliveries?limit=5", undef, 'attempt log'); $pause->();
    }
}

sub spawn {
    my ($code) = @_;
    my $pid = fork // die;
    if (!$pid) { $SIG{PIPE} = 'IGNORE'; $code->(); POSIX::_exit(0) }
    push @kids, $pid;
    return $pid;
}

# ---- the server side --------------------------------------------------------
sub dbh { DBI->connect($DSN, '', '', { RaiseError => 1, PrintError => 0, AutoCommit => 1 }) }

sub dispatcher_pid {
    my @p = slurp("$W/error.log") =~ /OWH00507: dispatcher \S+?:(\d+) started/g;
    for my $p (reverse @p) { return $p if kill 0, $p }
    return;
}

sub wait_until {
    my ($cond, $timeout) = @_;
    my $end = time + $timeout;
    while (time < $end) { my $v = $cond->(); return $v if $v; sleep 0.1 }
    return $cond->();
}

sub httpd_k { system($HTTPD, '-f', "$W/httpd.conf", '-k', $_[0]) == 0 or warn "apache2 -k $_[0] failed\n" }
sub quiet {
    my $pid = fork // die;
    if (!$pid) { open(STDOUT, '>', '/dev/null'); open(STDERR, '>', '/dev/null'); { exec(@_) } POSIX::_exit(127) }
    waitpid($pid, 0);
    return $?;
}
sub pg_ctl { quiet("$PGBIN/pg_ctl", '-D', "$W/pg", '-w', '-l', "$W/pg.log", @_) == 0 or warn "pg_ctl @_ failed\n" }

# with sink B slow (300 ms an answer) for 2 s first, so deliveries are in flight
sub kill_dispatcher {
    set_mode(b => 'slow');
    sleep 2;
    my $p = dispatcher_pid() or do { warn "no dispatcher to kill\n"; return };
    kill 'KILL', $p;
    set_mode(b => 'ok');
    wait_until(sub { my $q = dispatcher_pid(); $q && $q != $p }, 60) or warn "the dispatcher was not respawned\n";
}

# ---- incremental reading of the logs ----------------------------------------
my (%acked, %recv_first, %emit_t0, %emit_err, %uuid_of, %pos);
sub read_new {
    my ($file, $fn) = @_;
    open(my $fh, '<', $file) or return;
    seek($fh, $pos{$file} // 0, 0);
    while (my $line = <$fh>) {
        last unless $line =~ /\n$/;
        $pos{$file} = tell($fh);
        chomp $line;
        $fn->(split /\t/, $line);
    }
}
sub refresh {
    read_new("$W/emit.log", sub {
        my ($t0, $t1, $seq, $uuid, $res) = @_;
        $emit_t0{$seq} = $t0;
        $uuid_of{$seq} = $uuid;
        if ($res eq 'ok') { $acked{$seq} = $t1 } else { $emit_err{$seq} = 1 }
    });
    read_new("$W/sink.log", sub {
        my ($t, $path, $wid, $uuid, $seq, $what) = @_;
        $recv_first{"$path $seq"} //= $t if $what eq 'ok';
    });
}

# Deliveries parked behind an earlier delivery of their object that no longer
# exists (see the README: the dispatchers' unpark_orphans() releases them
# within about a second). Still there after 5 s, they are stuck; the events
# behind them are not waited for (they count as lost at the end).
my (%stuck, %orphan_seen);
sub find_stuck {
    my $rows = eval {
        my $d = dbh();
        my $r = $d->selectall_arrayref(q{
            SELECT substring(d.webhook->>'url' from '/[ab]$'), d.object_key, (e.object->>'seq')::bigint
              FROM octo_webhooks.deliveries d JOIN octo_webhooks.events e ON e.id = d.event_id
             WHERE d.status = 'pending' AND d.next_attempt_at = 'infinity'
               AND NOT EXISTS (SELECT 1 FROM octo_webhooks.deliveries p
                                WHERE p.webhook_id = d.webhook_id AND p.object_key = d.object_key
                                  AND p.status = 'pending' AND p.event_id < d.event_id)});
        $d->disconnect;
        $r;
    } or return;
    my $now = time;
    for my $row (@$rows) {
        my ($path, $uuid, $seq) = @$row;
        my $k = "$path $uuid $seq";
        $orphan_seen{$k} //= $now;
        if ($now - $orphan_seen{$k} >= 5 && !exists $stuck{"$path $uuid"}) {
            $stuck{"$path $uuid"} = $seq;
            print "\n   !! $path $uuid: delivery of seq $seq parked with nothing before it (stuck for good) ";
        }
    }
}

# Waits until every event acknowledged by time $t has reached both webhooks;
# returns the time the last of them arrived, undef on timeout.
my @PATHS = ('/a', '/b');

sub caught_up {
    my ($t, $timeout) = @_;
    my $end = time + $timeout;
    my $check = time + 3;
    while (1) {
        refresh();
        my ($missing, $last) = (0, $t);
        for my $seq (keys %acked) {
            next if $acked{$seq} > $t;
            for my $p (@PATHS) {
                my $r = $recv_first{"$p $seq"};
                my $s = $stuck{"$p $uuid_of{$seq}"};
                if (!defined $r) { $missing++ unless defined $s && $seq >= $s }
                elsif ($r > $last) { $last = $r }
            }
        }
        return $last unless $missing;
        return if time > $end;
        if (time > $check) { find_stuck(); $check = time + 1 }
        sleep 0.2;
    }
}

# The first event emitted after time $t: when it had reached both webhooks
# (how long until new work flows again), undef on timeout.
sub first_new_delivered {
    my ($t, $timeout) = @_;
    my $end = time + $timeout;
    while (time < $end) {
        refresh();
        # (an event of an object stuck on both webhooks tells nothing)
        my $open = sub { grep { !defined $stuck{"$_ $uuid_of{$_[0]}"} } @PATHS };
        my ($seq) = sort { $a <=> $b } grep { $emit_t0{$_} >= $t && $open->($_) } keys %acked;
        if (defined $seq) {
            my @r = map { $recv_first{"$_ $seq"} } $open->($seq);
            return (sort { $b <=> $a } @r)[0] unless grep { !defined } @r;
        }
        sleep 0.1;
    }
    return;
}

# ---- the run ----------------------------------------------------------------
my $db = dbh();
$db->do(q{INSERT INTO octo_webhooks.connections (id) VALUES ('res-1'), ('res-api') ON CONFLICT DO NOTHING});
my ($tok1) = $db->selectrow_array(q{SELECT octo_webhooks.create_token('res-1', '{octo:read.webhooks,octo:write.webhooks}', 'faults')});
my ($tokapi) = $db->selectrow_array(q{SELECT octo_webhooks.create_token('res-api', '{octo:read.webhooks,octo:write.webhooks}', 'faults')});
my $ua0 = LWP::UserAgent->new(timeout => 10);
my %wh;
for ([a => $SINKA], [b => $SINKB]) {
    my ($name, $port) = @$_;
    my $r = api($ua0, $tok1, 'POST', '/webhooks', { event => 'booking_update', url => "http://127.0.0.1:$port/$name" }, 'setup');
    $r->{code} eq '200' or die "cannot create webhook $name: $r->{code}\n";
    $wh{$name} = $r->{json}{id};
}
unlink "$W/api.log";
set_mode($_, 'ok') for qw(a b);
start_sink(a => $SINKA);
start_sink(b => $SINKB);
print "== webhooks: /a (sink A, always 200) and /b (sink B, the faulty one), both of reseller res-1\n";
print "== emit() $RATE/s over $OBJECTS bookings; API client: list, create, get, patch, delete, attempt log\n";
my $emitter = spawn(\&emitter);
my $apic = spawn(sub { api_client($tokapi, $tok1, $wh{b}) });

my @faults = (
    [none      => 'none (baseline)',                       sub { sleep 3 }],
    [kill1     => 'dispatcher kill -9 (1)',                \&kill_dispatcher],
    [kill2     => 'dispatcher kill -9 (2)',                \&kill_dispatcher],
    [pgrestart => 'PostgreSQL restart (-m fast)',          sub { pg_ctl('-m', 'fast', 'restart') }],
    [pgcrash   => 'PostgreSQL crash (-m immediate), 3 s down', sub { pg_ctl('-m', 'immediate', 'stop'); sleep 3;
                                                                     pg_ctl('-o', slurp("$W/pg.opts") =~ s/\s+$//r, 'start') }],
    [graceful  => 'apachectl graceful x3 (2 s apart)',     sub { for (1 .. 3) { httpd_k('graceful'); sleep 2 } }],
    [restart   => 'apachectl restart',                     sub { httpd_k('restart');
                                                                 wait_until(sub { dispatcher_pid() }, 30) }],
    [sinkdown  => 'sink B down 5 s (connection refused)',  sub { stop_sink('b'); sleep 5; start_sink(b => $SINKB) }],
    [hang      => 'sink B hangs 8 s (reads, never answers)', sub { set_mode(b => 'hang'); sleep 8; set_mode(b => 'ok') }],
    [reset     => 'sink B resets connections 6 s',         sub { set_mode(b => 'reset'); sleep 6; set_mode(b => 'ok') }],
    [503       => 'sink B 503 + Retry-After: 2 for 6 s',   sub { set_mode(b => '503'); sleep 6; set_mode(b => 'ok') }],
    [big       => 'sink B 200 + 100 MB body (4 answers)',  sub { set_mode(b => 'big 4'); sleep 6; set_mode(b => 'ok') }],
    [trickle   => 'sink B trickles (1 byte/100 ms) 6 s',   sub { set_mode(b => 'trickle'); sleep 6; set_mode(b => 'ok') }],
);
@faults = grep { $_->[0] eq 'none' || !$ONLY || $ONLY =~ /\b\Q$_->[0]\E\b/ } @faults;

my @phases;
sleep 3;
for my $f (@faults) {
    my ($key, $label, $inject) = @$f;
    my $ph = { key => $key, label => $label, start => time };
    sleep 3;                                   # the steady stream before the fault
    $ph->{fault} = time;
    printf "== %-45s ", $label;
    $inject->();
    $ph->{lifted} = time;
    my $back = caught_up($ph->{lifted}, 120);
    $ph->{recover} = defined $back ? $back - $ph->{lifted} : undef;
    my $new = first_new_delivered($ph->{lifted}, 60);
    $ph->{newflow} = defined $new ? $new - $ph->{lifted} : undef;
    printf "lifted after %.1f s, backlog delivered %s\n", $ph->{lifted} - $ph->{fault},
           defined $back ? sprintf('%.2f s later', $back - $ph->{lifted}) : 'NOT within 120 s';
    caught_up(time, 60);                      # phases do not bleed into each other
    push @phases, $ph;
}
sleep 3;
open(my $stop, '>', "$W/stop") or die;
close $stop;
waitpid($_, 0) for @kids;
my $final = caught_up(time, 120);
print "== the stream stopped; ", defined $final ? "everything acknowledged was delivered\n" : "NOT everything delivered within 120 s\n";
sleep 3;                                       # late duplicates, if any
stop_sink($_) for qw(a b);
refresh();

# ---- the figures ------------------------------------------------------------
$db = dbh();
my %committed = map { $_->[0] => $_->[1] } @{ $db->selectall_arrayref(
    q{SELECT (object->>'seq')::bigint, object_key FROM octo_webhooks.events WHERE connection_id = 'res-1'}) };
my $dstat = $db->selectall_arrayref(q{SELECT status, count(*) FROM octo_webhooks.deliveries GROUP BY 1 ORDER BY 1});
my $phase_of = sub {
    my ($t) = @_;
    my $i = 0;
    $i++ while $i + 1 < @phases && $phases[$i + 1]{start} <= $t;
    return $i;
};
for my $ph (@phases) { $ph->{$_} = 0 for qw(events errors expected received lost dup dupid order ackmissing faulty stucklost); $ph->{api} = {} }
for my $seq (keys %emit_t0) {
    my $ph = $phases[ $phase_of->($emit_t0{$seq}) ];
    $ph->{errors}++ if $emit_err{$seq};
    $ph->{ackmissing}++ if $acked{$seq} && !exists $committed{$seq};
}
for my $seq (keys %committed) {
    my $ph = $phases[ $phase_of->($emit_t0{$seq} // 0) ];
    $ph->{events}++;
    $ph->{expected} += @PATHS;
}
my (%seen, %wids, %maxseq, $phantom);
open(my $sl, '<', "$W/sink.log") or die;
while (my $line = <$sl>) {
    chomp $line;
    my ($t, $path, $wid, $uuid, $seq, $what) = split /\t/, $line;
    $phases[ $phase_of->($t) ]{faulty}++ if $what =~ /^(hang|reset|503|big-sent|big-cut|trickle-cut)$/;
    next unless $what eq 'ok' && grep { $_ eq $path } @PATHS;
    if (!exists $committed{$seq}) { $phantom++; next }
    my $ph = $phases[ $phase_of->($emit_t0{$seq} // 0) ];
    if ($seen{"$path $seq"}++) {
        $ph->{dup}++;
        $ph->{dupid}++ unless $wids{"$path $seq"}{$wid};   # a second delivery, not a repeat
    }
    else {
        $ph->{received}++;
        $ph->{order}++ if ($maxseq{"$path $uuid"} // 0) > $seq;
        $maxseq{"$path $uuid"} = $seq if ($maxseq{"$path $uuid"} // 0) < $seq;
    }
    $wids{"$path $seq"}{$wid} = 1;
}
find_stuck(); sleep 5.1; find_stuck();
for my $seq (keys %committed) {
    for my $p (@PATHS) {
        next if $seen{"$p $seq"};
        my $s = $stuck{"$p $committed{$seq}"};
        $phases[ $phase_of->($emit_t0{$seq} // 0) ]{stucklost}++ if defined $s && $seq >= $s;
    }
}
open(my $al, '<', "$W/api.log") or die;
my $api_total = 0;
while (my $line = <$al>) {
    chomp $line;
    my ($t0, $t1, $what, $code) = split /\t/, $line;
    $api_total++;
    my $ph = $phases[ $phase_of->($t0) ];
    if ($code !~ /^2/) {
        $ph->{api}{$code}++;
        $ph->{api_last_bad} = $t1 if $t1 > ($ph->{api_last_bad} // 0);
    }
}
my ($lost, $order, $dupid) = (0, 0, 0);
print "\n| fault | events | emit() errors | deliveries expected | received | lost | duplicates | order violations | faulty answers | API non-2xx | backlog delivered after | a new event delivered after | API 2xx again after |\n";
print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|\n";
for my $ph (@phases) {
    $ph->{lost} = $ph->{expected} - $ph->{received} + $ph->{ackmissing};
    $lost += $ph->{lost};
    $order += $ph->{order};
    $dupid += $ph->{dupid};
    my $api = join(', ', map { "$_ x$ph->{api}{$_}" } sort keys %{ $ph->{api} }) || '0';
    my $api_back = $ph->{api_last_bad} ? sprintf('%.1f s', $ph->{api_last_bad} > $ph->{lifted} ? $ph->{api_last_bad} - $ph->{lifted} : 0) : '-';
    printf "| %s | %d | %d | %d | %d | %d%s | %d%s | %d | %d | %s | %s | %s | %s |\n", $ph->{label}, $ph->{events}, $ph->{errors},
           $ph->{expected}, $ph->{received}, $ph->{lost}, $ph->{stucklost} ? " ($ph->{stucklost} stuck)" : '',
           $ph->{dup}, $ph->{dupid} ? " ($ph->{dupid} new ids)" : '', $ph->{order}, $ph->{faulty}, $api,
           defined $ph->{recover} ? sprintf('%.2f s', $ph->{recover}) : 'no',
           defined $ph->{newflow} ? sprintf('%.2f s', $ph->{newflow}) : 'no', $api_back;
}
my %sum;
for my $ph (@phases) { $sum{$_} += $ph->{$_} for qw(events errors expected received lost dup order faulty) }
printf "| **all** | %d | %d | %d | %d | **%d** | %d | **%d** | %d | %d requests | | | |\n", @sum{qw(events errors expected received lost dup order faulty)}, $api_total;
print "\ndeliveries in the database: ", join(', ', map { "$_->[0] $_->[1]" } @$dstat), "\n";
print "acknowledged emit()s missing from the events table: ", (0 + grep { !exists $committed{$_} } keys %acked), "\n";
print "receptions of events never committed: ", $phantom // 0, "\n";
print "objects stuck behind a parked delivery with nothing before it: ", join(', ', map { "$_ (from seq $stuck{$_})" } sort keys %stuck) || 'none', "\n";
my $log = slurp("$W/error.log");
my $crashes = () = $log =~ /exit signal (?!Killed)[A-Z]/g;
my $starts = () = $log =~ /OWH00507: dispatcher/g;
print "dispatcher starts: $starts; httpd processes that died of a signal (besides kill -9): $crashes\n";
my $stucklost = 0;
$stucklost += $_->{stucklost} for @phases;
my $bad = $lost || $order || $dupid || $crashes;
print $bad ? "FAIL: lost $lost ($stucklost of them behind stuck parked deliveries), order violations $order, "
             . "second deliveries of one event $dupid, crashes $crashes\n"
           : "PASS: nothing lost, nothing out of order\n";
exit($bad ? 1 : 0);
