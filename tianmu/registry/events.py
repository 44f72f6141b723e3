"""Event types of the base-data app. Every one comes from a record kind (kinds.py): registering a kind declares
`registry.{model}.created / updated / deleted / imported / generated` (core/registry/events.py). Declare here
any type of this app that is not a record change; see /events/catalogue/ for them all."""
