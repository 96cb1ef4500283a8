<?php
// A PHP app behind the session gateway (examples/php/Caddyfile). The session
// arrives as JSON in the X-Session request header; the app changes it by
// answering with X-Session-Update (a JSON merge patch) or X-Session-Replace.
// PHP's own sessions (session_start) are not used: no cookie, no key here.
$session = json_decode($_SERVER['HTTP_X_SESSION'] ?? '{}', true) ?: [];
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$post = $_SERVER['REQUEST_METHOD'] === 'POST';

if ($post && $path === '/login') {
    $user = trim($_POST['user'] ?? '');
    if ($user === '') {
        http_response_code(400);
        exit("A name is required.\n");
    }
    // Log in: a permanent session, under a new ID (against session fixation).
    header('X-Session-Update: ' . json_encode(['user' => $user, '_permanent' => true]));
    header('X-Session-Renew: true');
    header('Location: /', true, 303);
    exit;
}
if ($post && $path === '/logout') {
    header('X-Session-Replace: {}'); // an empty session deletes the cookie
    header('Location: /', true, 303);
    exit;
}
if ($path !== '/') {
    http_response_code(404);
    exit("Not found\n");
}

$visits = ($session['visits'] ?? 0) + 1;
header('X-Session-Update: ' . json_encode(['visits' => $visits]));
$user = $session['user'] ?? null;
?>
<!doctype html>
<title>PHP behind the session gateway</title>
<?php if ($user !== null): ?>
<p>Hello, <?= htmlspecialchars($user) ?>! Visits: <?= $visits ?></p>
<form method="post" action="/logout"><button>Log out</button></form>
<?php else: ?>
<p>Hello, stranger. Visits: <?= $visits ?></p>
<form method="post" action="/login"><input name="user" required> <button>Log in</button></form>
<?php endif ?>
