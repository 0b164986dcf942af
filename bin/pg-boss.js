#!/usr/bin/env node
'use strict'
// The `pg-boss` command, as pg-boss installs it: see bin/cli.js.
require('../bin/cli.js').main()
