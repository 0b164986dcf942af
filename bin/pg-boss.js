#!/usr/bin/env node
'use strict'
// The `pg-boss` command, as pg-boss installs it: see lib/cli.js.
require('../lib/cli.js').main()
