/*
 * Starbox's light Voilà app page.
 *
 * Voilà 0.5's own page starts a JupyterLab front end: voila.js, ~60 chunks and every installed
 * lab extension (3.7 MB), a plugin system, then the widget manager. On a small machine that costs
 * a browser about 1.3 s of CPU before a student can touch a slider. An app needs much less:
 * ipywidgets' widget manager on one kernel connection, and a renderer for each cell output. That
 * is this file, bundled once at install time (esbuild, pinned versions, no network at run time).
 *
 * The page itself comes from the `starbox` Voilà template (pre-rendered in a pre-heated kernel);
 * it carries the kernel's id in its page config, and each cell output as a
 * `<script type="application/vnd.voila.cell-output+json">`. Widgets other than ipywidgets' own
 * (base, controls, output) are not bundled: a page that meets one reloads itself on the
 * `starbox-lab` template, which is Voilà's full front end.
 */

import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { MimeModel, RenderMimeRegistry, standardRendererFactories } from '@jupyterlab/rendermime';
import { ServerConnection } from '@jupyterlab/services';
import { KernelConnection } from '@jupyterlab/services/lib/kernel/default';
import * as base from '@jupyter-widgets/base';
import * as controls from '@jupyter-widgets/controls';
import { KernelWidgetManager } from '@jupyter-widgets/jupyterlab-manager/lib/manager';
import { WidgetRenderer } from '@jupyter-widgets/jupyterlab-manager/lib/renderer';
import * as output from '@jupyter-widgets/jupyterlab-manager/lib/output';
import { Widget } from '@lumino/widgets';

import '@jupyter-widgets/base/css/index.css';
import '@jupyter-widgets/controls/css/widgets-base.css';

const WIDGET_MIMETYPE = 'application/vnd.jupyter.widget-view+json';
const OUTPUT_SELECTOR = 'script[type="application/vnd.voila.cell-output+json"]';
const BUNDLED = new Set(['@jupyter-widgets/base', '@jupyter-widgets/controls', '@jupyter-widgets/output']);
const FULL_TEMPLATE = 'starbox-lab';

/** A plain-language notice at the top of the page (the template styles .starbox-message). */
function notice(text: string): void {
  let el = document.getElementById('starbox-notice');
  if (!el) {
    el = document.createElement('div');
    el.id = 'starbox-notice';
    el.className = 'starbox-message error';
    el.setAttribute('role', 'alert');
    document.body.prepend(el);
  }
  el.textContent = text;
}

/** Reload this app on Voilà's full front end, which loads every installed widget library. */
function reloadOnFullPage(): void {
  const url = new URL(window.location.href);
  if (url.searchParams.get('template') === FULL_TEMPLATE) {
    return;
  }
  url.searchParams.set('template', FULL_TEMPLATE);
  window.location.replace(url.toString());
}

class AppWidgetManager extends KernelWidgetManager {
  async loadClass(className: string, moduleName: string, moduleVersion: string): Promise<any> {
    if (!BUNDLED.has(moduleName)) {
      reloadOnFullPage();
    }
    return super.loadClass(className, moduleName, moduleVersion);
  }
}

function registerWidgets(manager: KernelWidgetManager): void {
  manager.register({
    name: '@jupyter-widgets/base',
    version: base.JUPYTER_WIDGETS_VERSION,
    exports: {
      WidgetModel: base.WidgetModel,
      WidgetView: base.WidgetView,
      DOMWidgetView: base.DOMWidgetView,
      DOMWidgetModel: base.DOMWidgetModel,
      LayoutModel: base.LayoutModel,
      LayoutView: base.LayoutView,
      StyleModel: base.StyleModel,
      StyleView: base.StyleView,
      ErrorWidgetView: base.ErrorWidgetView
    } as any
  });
  manager.register({
    name: '@jupyter-widgets/controls',
    version: controls.JUPYTER_CONTROLS_VERSION,
    exports: controls as any
  });
  manager.register({
    name: '@jupyter-widgets/output',
    version: output.OUTPUT_WIDGET_VERSION,
    exports: { OutputModel: output.OutputModel, OutputView: output.OutputView } as any
  });
}

/** Replace each pre-rendered cell output's JSON with its rendering. */
function renderOutputs(rendermime: RenderMimeRegistry): void {
  document.querySelectorAll(OUTPUT_SELECTOR).forEach((script) => {
    const container = script.parentElement;
    let data: any;
    try {
      data = JSON.parse(script.textContent || '{}');
    } catch {
      return;
    }
    const mimeType = data.data && rendermime.preferredMimeType(data.data, 'any');
    if (!container || !mimeType) {
      return;
    }
    const renderer = rendermime.createRenderer(mimeType);
    renderer.addClass('jp-OutputArea-output');
    container.removeChild(script);
    Widget.attach(renderer, container);
    renderer
      .renderModel(new MimeModel({ data: data.data, metadata: data.metadata || {}, trusted: true }))
      .catch((err: Error) => {
        console.error(err);
        notice('Part of this app could not be shown. Reload the page to try again.');
      });
  });
}

/** When the page goes, ask Voilà to shut its kernel down now rather than when the culler comes. */
function shutDownKernelOnLeave(baseUrl: string, kernel: KernelConnection): void {
  window.addEventListener('pagehide', () => {
    const form = new FormData();
    const xsrf = document.cookie.match('\\b_xsrf=([^;]*)\\b');
    form.append('_xsrf', (xsrf && xsrf[1]) || '');
    navigator.sendBeacon(URLExt.join(baseUrl, 'voila/api/shutdown', kernel.id), form);
    kernel.dispose();
  });
}

const RECONNECT_GRACE_MS = 5000;

/** Tell the student, in plain words, when the app's kernel dies or the server goes away. */
function watchKernel(kernel: KernelConnection): void {
  kernel.statusChanged.connect((_, status) => {
    if (status === 'dead' || status === 'autorestarting' || status === 'restarting') {
      notice('This app stopped working (its Python session ended). Reload the page to start it again.');
    }
  });
  // A dropped connection is retried at once; say something only if it stays down.
  let lost: number | undefined;
  kernel.connectionStatusChanged.connect((_, status) => {
    if (status === 'connected') {
      window.clearTimeout(lost);
      lost = undefined;
    } else if (lost === undefined) {
      lost = window.setTimeout(
        () => notice('This app lost its connection to Starbox. Reload the page to start it again.'),
        status === 'disconnected' ? 0 : RECONNECT_GRACE_MS
      );
    }
  });
}

function main(): void {
  const baseUrl = PageConfig.getBaseUrl();
  const kernelId = PageConfig.getOption('kernelId');
  if (!kernelId) {
    notice('This app could not start (no Python session was given to the page). Reload the page.');
    return;
  }
  const serverSettings = ServerConnection.makeSettings({ baseUrl });
  // The page knows its kernel's id: connect straight away, without asking for its model first.
  const kernel = new KernelConnection({ model: { id: kernelId, name: '' }, serverSettings });
  watchKernel(kernel);
  shutDownKernelOnLeave(baseUrl, kernel);

  const rendermime = new RenderMimeRegistry({ initialFactories: standardRendererFactories });
  const manager = new AppWidgetManager(kernel, rendermime);
  registerWidgets(manager);
  rendermime.addFactory(
    { safe: false, mimeTypes: [WIDGET_MIMETYPE], createRenderer: (o) => new WidgetRenderer(o, manager) },
    -10
  );
  renderOutputs(rendermime);
}

main();
