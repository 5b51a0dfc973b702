#!/usr/bin/env node
import "../dist/k8sdiag.mjs";
