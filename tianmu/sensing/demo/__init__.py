"""Invented monitoring data, for the demo and for trying the platform out. Only the demo (`tianmu.demo`) and
`tianmu simulate` use it; the rest of the app never imports it.

* `network`: the demo monitoring network of Lin'an and its dry-weather history (built by `tianmu demo`);
* `simulate`: a typhoon rain event over the registered sensors (`tianmu simulate typhoon`);
* `feed`: the demo network's quiet-weather reports after the storm (`tianmu demo_feed`).
"""
