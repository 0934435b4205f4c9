"""The track catalog: a DJ's library built on uploads (issue 13). `links` names where a
track's media lives; the routes, service and catalog search build on it."""
